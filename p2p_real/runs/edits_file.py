"""Edits files (JSON or YAML): what to edit, read into `EditJob`s; any mistake names the entry and the field.

An edits file lists, per edit, the photo (or an artifact folder), the target caption and options:

    edits:
      - photo: chelsea.jpg                       # relative to the edits file
        prompt: a close-up photo of a tabby cat  # optional: else captions.json / chelsea.txt
        target: a close-up photo of a tabby dog
        blend: [cat, dog]                        # optional LocalBlend words (source, target)
        reweight: {tabby: 2}                     # optional
        kind: auto                               # auto | replace | refine | reweight
        cross_replace_steps: 0.4                 # or [start, end], or {default_: 0.4, dog: [0, 0.8]}
        self_replace_steps: 0.6                  # or [start, end]
        name: cat-to-dog                         # optional output folder name
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..editing.options import EditOptions
from ..errors import P2PError
from .captions import caption_for

EDITS_FILES = ("edits.yaml", "edits.yml", "edits.json")
EDIT_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class EditJob:
    source: Path  # a photo, or an artifact folder from `p2p-real invert`
    target: str
    options: EditOptions = EditOptions()
    prompt: str | None = None  # the photo's caption, when `source` is a photo
    name: str = ""  # output folder name; from the target when empty

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


def read_edits_file(path: str | Path) -> list[EditJob]:
    """Parse an edits file; any mistake is a P2PError naming the file, the entry and the field."""
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
    return [parse_entry(entry, index, path) for index, entry in enumerate(entries, start=1)]


def parse_entry(entry, index: int, path: Path) -> EditJob:
    where = f"{path}, edit {index}"
    known = {"photo", "artifact", "prompt", "target", "blend", "reweight", "kind", "cross_replace_steps", "self_replace_steps", "name"}
    if not isinstance(entry, dict):
        raise P2PError(f"{where}: expected a mapping with photo and target")
    unknown = set(entry) - known
    if unknown:
        raise P2PError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    if "target" not in entry or not ("photo" in entry or "artifact" in entry):
        raise P2PError(f"{where}: needs a target and a photo (or an artifact folder)")
    source = path.parent / str(entry.get("photo") or entry.get("artifact"))
    prompt = entry.get("prompt") or (caption_for(source) if source.is_file() else None)
    blend = entry.get("blend")
    if blend is not None and (not isinstance(blend, (list, tuple)) or len(blend) != 2):
        raise P2PError(f"{where}: blend must be two words, [source word, target word]")
    cross = entry.get("cross_replace_steps", EditOptions.cross_replace_steps)
    if isinstance(cross, dict):
        cross = {word: tuple(window) if isinstance(window, list) else window for word, window in cross.items()}
    elif isinstance(cross, list):
        cross = tuple(cross)
    self_steps = entry.get("self_replace_steps", EditOptions.self_replace_steps)
    options = EditOptions(
        kind=str(entry.get("kind", "auto")),
        cross_replace_steps=cross,
        self_replace_steps=tuple(self_steps) if isinstance(self_steps, list) else self_steps,
        reweights={str(word): float(factor) for word, factor in (entry.get("reweight") or {}).items()},
        blend_words=tuple(map(str, blend)) if blend else None,
    )
    return EditJob(source, str(entry["target"]), options, prompt, str(entry.get("name") or ""))


