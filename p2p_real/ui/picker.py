"""What the page's picker offers: the inversions kept in the output folder, then what the command
line named (photos, folders of photos, artifact folders and folders of them). Read afresh on every
refresh, so that an inversion `p2p-real invert` made a minute ago is there."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..artifacts import METADATA_FILE, read_record
from ..errors import P2PError
from ..images import PHOTO_SUFFIXES
from ..runs.photos import find_photos

ANOTHER_MODEL = "(another model: not editable on this page)"
MAX_CAPTION_SHOWN = 60  # characters of a caption in a picker entry, so that entries stay on one line


@dataclass(frozen=True)
class Choice:
    label: str
    path: Path  # a photo, or an artifact folder (one holding inversion.json)
    model_name: str = ""  # an inversion's model, as its record names it
    model_fingerprint: str = ""  # ...and as it is: the only model that can edit the inversion


def editable_by(choice: Choice, model_fingerprint: str | None) -> Choice:
    """`choice`, its label saying so when it is an inversion the page's model cannot edit."""
    if not model_fingerprint or not choice.model_fingerprint or choice.model_fingerprint == model_fingerprint:
        return choice
    model = f" · {choice.model_name} · "
    return replace(choice, label=choice.label.replace(model, f" · {choice.model_name} {ANOTHER_MODEL} · ", 1))


def find_choices(inputs: list[Path], output: Path, model_fingerprint: str | None = None) -> list[Choice]:
    """The output folder's kept inversions, then each input's photos and inversions, each once, an
    inversion of a model other than `model_fingerprint`'s marked as one this page cannot edit. An
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
    return [editable_by(choice, model_fingerprint) for choice in unique.values()]


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
            model = record.get("model_name") or "an unnamed model"
            choices.append(Choice(f"inversion {folder} · {model} · {shortened(record.get('prompt', ''))}", folder,
                                  model, record.get("model_fingerprint") or ""))
    return choices


def photo_choices(inputs: list[Path]) -> list[Choice]:
    """Photos with their captions (captions.json or a .txt beside the photo), as `p2p-real invert` finds them."""
    return [Choice(f"photo {photo.path} · {shortened(photo.caption) if photo.caption else '(no caption)'}", photo.path)
            for photo in find_photos([str(path) for path in inputs])]


def shortened(text: str) -> str:
    return text if len(text) <= MAX_CAPTION_SHOWN else text[: MAX_CAPTION_SHOWN - 1] + "…"
