"""Edits files (JSON or YAML): what to edit, read into `EditJob`s. Each entry is checked whole when
read; a bad one is reported (naming the file, the entry and the field) and skipped, not run.

An edits file lists, per edit, the photo (or an artifact folder), the target caption and options:

    edits:
      - photo: chelsea.jpg                       # relative to the edits file (or artifact: a folder
                                               # from `p2p-real invert`)
        prompt: a close-up photo of a tabby cat  # optional: else captions.json / chelsea.txt
        target: a close-up photo of a tabby dog
        blend: [cat, dog]                        # optional LocalBlend words (source, target)
        mask: chelsea-mask.png                   # optional painted mask, relative to the edits file:
                                               # white = edit, black = keep (with blend: both must say edit)
        blend_threshold: 0.3                     # optional, with blend: the mask's cut, as a fraction of its peak
        reweight: {tabby: 2}                     # optional
        kind: auto                               # auto | replace | refine | reweight
        cross_replace_steps: 0.4                 # or [start, end], or {default_: 0.4, dog: [0, 0.8]}
        self_replace_steps: 0.6                  # or [start, end]
        name: cat-to-dog                         # optional output folder name
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..editing.options import EditOptions
from ..errors import OptionError, P2PError, check_text
from .captions import caption_for
from .edit_flags import ENTRY_KEYS, entry_fields, entry_key, entry_options
from .masks import MaskFile, read_mask

EDITS_FILES = ("edits.yaml", "edits.yml", "edits.json")
EDIT_SUFFIXES = (".json", ".yaml", ".yml")
KNOWN_FIELDS = ("photo", "artifact", "prompt", "target", *ENTRY_KEYS, "mask", "name")


@dataclass(frozen=True)
class EditJob:
    source: Path  # a photo, or an artifact folder from `p2p-real invert`
    target: str
    options: EditOptions = EditOptions()
    prompt: str | None = None  # the photo's caption, when `source` is a photo
    name: str = ""  # output folder name; from the target when empty
    mask: Path | None = None  # a painted mask file (runs/masks.py): the edit changes only where it is white
    mask_file: MaskFile | None = field(default=None, compare=False, repr=False)  # `mask` as read when the job was made

    @property
    def photo_name(self) -> str:
        return self.source.name if self.source.is_dir() else self.source.stem

    @property
    def edit_name(self) -> str:
        return self.name or re.sub(r"[^a-z0-9]+", "-", self.target.lower()).strip("-")[:60] or "edit"

    def artifact(self, output: Path) -> Path:
        """The inversion this edit starts from: the folder given, or the photo's in OUTPUT."""
        return self.source if self.source.is_dir() else output / self.photo_name


def find_edits_file(path: Path) -> Path | None:
    """`path` itself when it is an edits file, or the edits file inside the folder `path`."""
    if path.is_file() and path.suffix.lower() in EDIT_SUFFIXES:
        return path
    if path.is_dir():
        return next((path / name for name in EDITS_FILES if (path / name).is_file()), None)
    return None


class EditsFile(NamedTuple):
    """An edits file as read: a job per good entry, and a line per bad one (naming the file, the
    entry and the field), which was skipped so that the good ones still run."""

    jobs: list[EditJob]
    problems: list[str]


def read_edits_file(path: str | Path) -> EditsFile:
    """Parse an edits file. One that cannot be read, or lists no edits, is a P2PError; a bad entry
    becomes a line of `problems` and is left out of `jobs`."""
    path = Path(path)
    try:
        text = path.read_text()
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as error:  # JSON, YAML and I/O errors all mean: this file cannot be read
        raise P2PError(f"{path}: cannot read the edits file ({str(error).splitlines()[0]})") from None
    entries = data.get("edits") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise P2PError(f"{path}: expected a list of edits (or {{edits: [...]}})")
    jobs, problems = [], []
    for index, entry in enumerate(entries, start=1):
        try:
            jobs.append(parse_entry(entry, index, path))
        except P2PError as error:
            problems.append(str(error))
    return EditsFile(jobs, problems)


def parse_entry(entry, index: int, path: Path) -> EditJob:
    """One entry, checked whole; a mistake is a P2PError naming the file, the entry and the field."""
    where = f"{path}, edit {index}"
    if not isinstance(entry, dict):
        raise P2PError(f"{where}: expected a mapping with photo and target, got {entry!r:.60}")
    unknown = set(entry) - set(KNOWN_FIELDS)
    if unknown:
        raise P2PError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                       f"known: {', '.join(KNOWN_FIELDS)}")
    try:
        return entry_job({key: value for key, value in entry.items() if value is not None}, path)  # null: not given
    except OptionError as error:
        word = "" if error.word is None else f" ({error.word})"
        raise P2PError(f"{where}, field {entry_key(error.field)}{word}: {error.problem}") from None


def entry_job(entry: dict, path: Path) -> EditJob:
    """An entry's job; OptionError names the field (EditOptions' own names for its options)."""
    if ("photo" in entry) == ("artifact" in entry):
        raise OptionError("photo", "give either photo (a photo to invert first) or artifact "
                                   "(a folder from `p2p-real invert`)")
    field = "photo" if "photo" in entry else "artifact"
    check_text(field, entry[field], "a path relative to the edits file")
    source = path.parent / entry[field]
    if not source.exists():
        raise OptionError(field, f"{source}: no such {'photo' if field == 'photo' else 'artifact folder'}")
    check_text("target", entry.get("target"), "the edited caption")
    for optional in ("prompt", "name"):
        if optional in entry:
            check_text(optional, entry[optional])
    prompt = entry.get("prompt") or (caption_for(source) if source.is_file() else None)
    if source.is_file() and not prompt:
        raise OptionError("prompt", f"none given, and no caption for {source.name} in captions.json or "
                                    f"{source.stem}.txt; add prompt: \"what the photo shows\"")
    options = entry_options(entry)
    if "blend_threshold" in entry and options.blend_words is None:
        raise OptionError("blend_threshold", "a LocalBlend threshold needs blend: [source word, target word]; "
                                             "add it, or leave blend_threshold out")
    mask = entry_mask(entry, path)
    return EditJob(source, entry["target"], options, prompt, entry.get("name", ""), mask and mask.path, mask)


def entry_mask(entry: dict, path: Path) -> MaskFile | None:
    """The entry's mask file, relative to the edits file, read once now so that a bad one is a bad
    entry; the job keeps what was read."""
    if "mask" not in entry:
        return None
    check_text("mask", entry["mask"], "a path relative to the edits file")
    try:
        return read_mask(path.parent / entry["mask"])
    except P2PError as error:
        raise OptionError("mask", str(error)) from None


def entry_for(job: EditJob) -> dict:
    """The edits file's entry that reads back as `job`: its source by absolute path, which an edits
    file anywhere resolves to the same place; kind, prompt, name and re-weights only when given."""
    entry = {"artifact" if job.source.is_dir() else "photo": str(job.source.resolve()), "target": job.target}
    if job.prompt and not job.source.is_dir():
        entry["prompt"] = job.prompt
    entry.update(entry_fields(job.options))
    if job.mask is not None:
        entry["mask"] = str(Path(job.mask).resolve())  # absolute: read the same from any edits file
    if job.name:
        entry["name"] = job.name
    return entry
