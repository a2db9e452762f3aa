"""PIE-Bench's annotation format (Ju et al. 2024): mapping_file.json and its run-length masks.

Each entry: image_path, original_prompt, editing_prompt (edited words in [brackets]),
blended_word ("source target", or ""), mask (run-length pairs over the 512x512 image, row-major),
editing_type_id ("0".."9").
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import P2PError

MASK_SIZE = 512


@dataclass(frozen=True)
class BenchEdit:
    key: str
    image: Path
    source_prompt: str
    target_prompt: str
    blend_words: tuple[str, str] | None
    mask: np.ndarray | None  # (512, 512) float32 in {0, 1}: 1 = the region to edit
    edit_type: str
    options: object | None = None  # an edits file's own EditOptions; PIE-Bench entries use the bench's


def decode_mask(runs: list[int], size: int = MASK_SIZE) -> np.ndarray:
    """PIE-Bench's `mask_decode`: (start, length) pairs over the flattened image; the one-pixel
    border is set to 1, as the benchmark does against annotation errors at the edges."""
    flat = np.zeros(size * size, dtype=np.float32)
    for start, length in zip(runs[0::2], runs[1::2]):
        flat[start : start + min(length, size * size - start)] = 1
    mask = flat.reshape(size, size)
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = 1
    return mask


def without_brackets(prompt: str) -> str:
    return re.sub(r"\s+", " ", prompt.replace("[", "").replace("]", "")).strip()


def read_mapping_file(path: str | Path) -> list[BenchEdit]:
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
            words = entry.get("blended_word", "").split()
            edits.append(BenchEdit(
                key=str(key), image=image,
                source_prompt=without_brackets(entry["original_prompt"]),
                target_prompt=without_brackets(entry["editing_prompt"]),
                blend_words=(words[0], words[1]) if len(words) == 2 else None,
                mask=decode_mask(entry["mask"]) if entry.get("mask") else None,
                edit_type=str(entry.get("editing_type_id", "")),
            ))
        except (KeyError, TypeError) as error:
            raise P2PError(f"{path}, entry {key}: missing or malformed field {error}") from None
    return edits


def read_bench_edits(path: str | Path) -> list[BenchEdit]:
    """Entries from a PIE-Bench mapping file, or the same shape from one of our edits files
    (no masks there, so the masked metrics come out NaN and are counted as such)."""
    from ..editing.job import read_edits_file

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
