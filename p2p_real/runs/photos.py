"""Find the photos a command should work on, and the caption of each.

A photo named on the command line takes `--prompt` when one is given. Otherwise, and for the
photos of a folder, a caption comes, in this order, from `captions.json` in the photo's folder (an
object mapping file name to caption), from a text file beside the photo with the same stem
(`cat.jpg` -> `cat.txt`), or from `--prompt` as the fallback.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import P2PError
from ..images import PHOTO_SUFFIXES

CAPTIONS_FILE = "captions.json"


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


def caption_for(path: Path) -> str | None:
    captions_file = path.parent / CAPTIONS_FILE
    if captions_file.is_file():
        try:
            captions = json.loads(captions_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise P2PError(f"{captions_file}: not valid JSON ({error})") from None
        if not isinstance(captions, dict):
            raise P2PError(f"{captions_file}: expected an object mapping file names to captions")
        if path.name in captions:
            return str(captions[path.name])
    text_file = path.with_suffix(".txt")
    if text_file.is_file():
        return text_file.read_text().strip() or None
    return None
