"""Benchmark entries from a PIE-Bench mapping_file.json, or from one of our edits files."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import P2PError
from ..eval.pie_bench import BenchEdit, from_mapping_entry
from .edits_file import read_edits_file


def read_mapping_file(path: str | Path) -> list[BenchEdit]:
    """PIE-Bench's entries; a photo is looked for beside the file, then in annotation_images/."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise P2PError(f"{path}: cannot read the mapping file ({error})") from None
    if not isinstance(entries, dict):
        raise P2PError(f"{path}: expected an object of edits keyed by id, as PIE-Bench's mapping_file.json")
    edits = []
    for key, entry in entries.items():
        try:
            image = path.parent / entry["image_path"]
            if not image.exists():
                image = path.parent / "annotation_images" / entry["image_path"]
            edits.append(from_mapping_entry(key, entry, image))
        except (KeyError, TypeError) as error:
            raise P2PError(f"{path}, entry {key}: missing or malformed field {error}") from None
    return edits


def read_bench_edits(path: str | Path) -> list[BenchEdit]:
    """Entries from a PIE-Bench mapping file, or the same shape from one of our edits files
    (no masks there, so the masked metrics come out NaN and are counted as such)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise P2PError(f"{path}: cannot read ({error})") from None
        if isinstance(data, dict) and "edits" not in data:
            return read_mapping_file(path)
    return [
        BenchEdit(key=f"{job.photo_name}-{job.edit_name}", image=job.source, source_prompt=job.prompt or "",
                  target_prompt=job.target, blend_words=job.options.blend_words, mask=None, edit_type=job.options.kind,
                  options=job.options)
        for job in read_edits_file(path)
    ]
