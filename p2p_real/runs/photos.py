"""Find the photos a command should work on, each with its caption (runs/captions.py) and the name
of its output folder. A photo named on the command line takes `--prompt` when one is given."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import P2PError
from ..images import PHOTO_SUFFIXES
from .captions import caption_for

@dataclass(frozen=True)
class Photo:
    path: Path
    caption: str | None  # None: no caption was found
    name: str  # the output folder's name, unique within a run


def find_photos(inputs: list[str], prompt: str | None = None) -> list[Photo]:
    """Photos from files and folders (not recursive), with captions; names made unique."""
    paths: list[tuple[Path, bool]] = []  # (photo, named on the command line)
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
            if not found:
                raise P2PError(f"{path}: no photos in this folder (looked for {', '.join(PHOTO_SUFFIXES)})")
            paths.extend((photo, False) for photo in found)
        elif path.is_file():
            paths.append((path, True))
        else:
            raise P2PError(f"{path}: no such file or folder")
    names: set[str] = set()
    photos = []
    for path, named in paths:
        name = path.stem if path.stem not in names else f"{path.stem}-{path.suffix.lstrip('.').lower()}"
        names.add(name)
        caption = prompt if named and prompt else caption_for(path) or prompt
        photos.append(Photo(path, caption, name))
    return photos
