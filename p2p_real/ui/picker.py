"""What the page's picker offers: the inversions kept in the output folder, then what the command
line named (photos, folders of photos, artifact folders and folders of them). Read afresh on every
refresh, so that an inversion `p2p-real invert` made a minute ago is there."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..artifacts import METADATA_FILE, read_record
from ..errors import P2PError
from ..images import PHOTO_SUFFIXES
from ..runs.photos import find_photos

MAX_CAPTION_SHOWN = 60  # characters of a caption in a picker entry, so that entries stay on one line


@dataclass(frozen=True)
class Choice:
    label: str
    path: Path  # a photo, or an artifact folder (one holding inversion.json)


def find_choices(inputs: list[Path], output: Path) -> list[Choice]:
    """The output folder's kept inversions, then each input's photos and inversions, each once. An
    input that cannot be read now (moved, or a damaged captions.json) offers nothing."""
    choices = folder_inversions(output)
    for path in inputs:
        try:
            choices += input_choices(path)
        except (P2PError, OSError):
            continue
    unique: dict[Path, Choice] = {}  # an input inside OUTPUT is offered once
    for choice in choices:
        unique.setdefault(choice.path.resolve(), choice)
    return list(unique.values())


def check_inputs(inputs: list[Path]) -> None:
    """At start-up: a P2PError for an input that offers nothing to pick, or whose captions cannot be read."""
    for path in inputs:
        if not input_choices(path):
            raise P2PError(f"{path}: no photos ({', '.join(PHOTO_SUFFIXES)}) or kept inversions here; "
                           f"name photos, folders of photos, or folders from `p2p-real invert`")


def input_choices(path: Path) -> list[Choice]:
    """A photo; an artifact folder; or a folder's photos and the artifact folders inside it."""
    if path.is_file():
        return photo_choices([path])
    if (path / METADATA_FILE).is_file():
        return inversion_choices([path])
    photos = sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    return folder_inversions(path) + (photo_choices([path]) if photos else [])


def folder_inversions(folder: Path) -> list[Choice]:
    """The artifact folders directly inside `folder` (OUTPUT/<photo>/), by name."""
    if not folder.is_dir():
        return []
    return inversion_choices(sorted(path for path in folder.iterdir() if (path / METADATA_FILE).is_file()))


def inversion_choices(folders: list[Path]) -> list[Choice]:
    """Complete, readable artifacts only: one whose record is missing (cut short) or damaged is left out."""
    choices = []
    for folder in folders:
        try:
            record = read_record(folder)
        except P2PError:
            continue
        if record is not None:
            choices.append(Choice(f"inversion {folder} · {shortened(record.get('prompt', ''))}", folder))
    return choices


def photo_choices(inputs: list[Path]) -> list[Choice]:
    """Photos with their captions (captions.json or a .txt beside the photo), as `p2p-real invert` finds them."""
    return [Choice(f"photo {photo.path} · {shortened(photo.caption) if photo.caption else '(no caption)'}", photo.path)
            for photo in find_photos([str(path) for path in inputs])]


def shortened(text: str) -> str:
    return text if len(text) <= MAX_CAPTION_SHOWN else text[: MAX_CAPTION_SHOWN - 1] + "…"
