"""Find the photos a command should work on, each with its caption (runs/captions.py) and the name
of its output folder (runs/naming.py). A photo named on the command line takes `--prompt` when one
is given."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import P2PError
from ..images import PHOTO_SUFFIXES
from .captions import CaptionError, caption_for
from .naming import distinct, names_in_folder


@dataclass(frozen=True)
class Photo:
    path: Path
    caption: str | None  # None: no caption was found
    name: str  # the output folder's name: the same in every run, distinct within a run
    problem: str | None = None  # why the photo cannot be done (its caption file unreadable): it fails alone


def find_photos(inputs: list[str], prompt: str | None = None) -> list[Photo]:
    """Photos from files and folders (not recursive), each once, with captions and folder names."""
    paths: dict[str, tuple[Path, bool]] = {}  # absolute path -> (photo, named on the command line)
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            try:
                found = sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
            except OSError as error:
                raise P2PError(f"{path}: cannot list this folder ({error.strerror or error}); "
                               f"fix its permissions") from None
            if not found:
                raise P2PError(f"{path}: no photos in this folder (looked for {', '.join(PHOTO_SUFFIXES)})")
            for photo in found:
                paths.setdefault(os.path.abspath(photo), (photo, False))
        elif path.is_file():
            paths.setdefault(os.path.abspath(path), (path, True))
        else:
            raise P2PError(f"{path}: no such file or folder")
    names = photo_names([path for path, _ in paths.values()])
    return [photo_with_caption(path, names[path], prompt if named else None, prompt) for path, named in paths.values()]


def photo_with_caption(path: Path, name: str, given: str | None, fallback: str | None) -> Photo:
    """The photo with the caption `given` it, else its caption file's, else `fallback`; a caption file
    that cannot be read makes it a photo that fails alone, with the reason."""
    if given:
        return Photo(path, given, name)
    try:
        return Photo(path, caption_for(path) or fallback, name)
    except CaptionError as error:
        return Photo(path, None, name, problem=str(error))


def photo_names(paths: list[Path]) -> dict[Path, str]:
    """Each photo's output folder name: from its own file name and its folder's other photos, so the
    same from run to run (naming.names_in_folder); photos of several folders that would still share
    a name in this run get a hash of their full path."""
    folders: dict[Path, set[str]] = {}
    for path in paths:
        folders.setdefault(path.parent, set()).add(path.name)
    for folder, names in folders.items():
        try:
            names.update(p.name for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
        except OSError:
            pass  # an unlistable folder: its photos of this run still get names
    in_folder = {folder: names_in_folder(sorted(names)) for folder, names in folders.items()}
    chosen = [in_folder[path.parent][path.name] for path in paths]
    return dict(zip(paths, distinct(chosen, [os.path.abspath(path) for path in paths])))
