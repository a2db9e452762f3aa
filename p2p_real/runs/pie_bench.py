"""Benchmark entries from a PIE-Bench mapping_file.json, or from one of our edits files.

A file that cannot be read is a P2PError; a bad entry is a line naming the file, the entry and the
field, and is skipped so that the others still run.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import OptionError, P2PError
from ..eval.pie_bench import MASK_SIZE, BenchEdit, from_mapping_entry
from .edits_file import read_edits_file


def read_mapping_entries(path: str | Path) -> tuple[list[BenchEdit], list[str]]:
    """PIE-Bench's entries, and a line per bad entry; a photo is looked for beside the file, then
    in annotation_images/."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise P2PError(f"{path}: cannot read the mapping file ({error})") from None
    if not isinstance(entries, dict) or not entries:
        raise P2PError(f"{path}: expected an object of edits keyed by id, as PIE-Bench's mapping_file.json")
    edits, problems = [], []
    for key, entry in entries.items():
        if not isinstance(entry, dict):
            problems.append(f"{path}, entry {key}: expected an object with image_path, original_prompt, "
                            f"editing_prompt, ...")
            continue
        try:
            edits.append(mapping_entry(key, entry, path))
        except OptionError as error:
            problems.append(f"{path}, entry {key}, field {error.field}: {error.problem}")
    return edits, problems


def mapping_entry(key: str, entry: dict, path: Path) -> BenchEdit:
    """One entry, its photo found; an OptionError names a bad field."""
    name = entry.get("image_path")
    if not isinstance(name, str) or not name.strip():
        raise OptionError("image_path", f"expected the photo's path as text; got {name!r:.60}")
    image = path.parent / name
    if not image.exists():
        image = path.parent / "annotation_images" / name
    if not image.is_file():
        raise OptionError("image_path", f"no photo {name} beside the mapping file or in annotation_images/")
    edit = from_mapping_entry(key, entry, image)  # the fields' types checked, the mask decoded
    check_mask_runs(entry.get("mask") or [])
    return edit


def check_mask_runs(runs: list[int]) -> None:
    """That every (start, length) run of a mask lies within the image: a run beyond it would be cut
    off without a word, and the entry scored against a mask of its border alone."""
    area = MASK_SIZE * MASK_SIZE
    for start, length in zip(runs[0::2], runs[1::2]):
        if start + length > area:
            raise OptionError("mask", f"the run ({start}, {length}) ends at pixel {start + length}, beyond the "
                                      f"{MASK_SIZE}x{MASK_SIZE} image's {area}; fix the entry's mask")


def read_mapping_file(path: str | Path) -> list[BenchEdit]:
    """Every entry of a mapping file, or a P2PError naming the first bad one."""
    edits, problems = read_mapping_entries(path)
    if problems:
        raise P2PError(problems[0])
    return edits


def read_bench_edits(path: str | Path) -> tuple[list[BenchEdit], list[str]]:
    """Entries from a PIE-Bench mapping file, or the same shape from one of our edits files (no
    masks there, so the masked metrics come out NaN and are counted as such); and a line per bad
    entry, skipped, an edit with a painted mask among them."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise P2PError(f"{path}: cannot read ({error})") from None
        if isinstance(data, dict) and "edits" not in data:
            return read_mapping_entries(path)
    jobs, problems = read_edits_file(path)
    # The benchmark scores Prompt-to-Prompt as published: an edit kept to a painted mask is another method.
    problems += [f"{path}: the edit {job.target!r} of {job.source.name} has a mask, which bench edit does not apply; "
                 f"leave it out of the benchmark's file" for job in jobs if job.mask is not None]
    return [
        BenchEdit(key=f"{job.photo_name}-{job.edit_name}", image=job.source, source_prompt=job.prompt or "",
                  target_prompt=job.target, blend_words=job.options.blend_words, mask=None, edit_type=job.options.kind,
                  options=job.options)
        for job in jobs if job.mask is None
    ], problems
