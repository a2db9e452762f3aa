"""PIE-Bench's annotation format (Ju et al. 2024): mapping_file.json and its run-length masks.

Each entry: image_path, original_prompt, editing_prompt (edited words in [brackets]),
blended_word ("source target", or ""), mask (run-length pairs over the 512x512 image, row-major),
editing_type_id ("0".."9"). Reading the file is runs/pie_bench.py's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OptionError

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
    """PIE-Bench's `mask_decode` (PnPInversion, evaluation/evaluate.py): (start, length) pairs over
    the flattened image, each run cut at the image's end; the one-pixel border is set to 1, as the
    benchmark does against annotation errors at the edges, so an empty list gives the border alone.
    Read as the reference's numpy indexing reads them: a negative start counts from the end and wraps
    to the start (-5, 10 marks the last 5 pixels and the first 5), a run of length <= 0 marks nothing."""
    total = size * size
    flat = np.zeros(total, dtype=np.float32)
    for start, length in zip(runs[0::2], runs[1::2]):
        if start < -total:
            raise ValueError(f"mask run start {start} lies before the image's {total} pixels")
        count = min(length, total - start)  # the reference's splice_len
        if count > 0:
            flat[np.arange(start, start + count) % total] = 1
    mask = flat.reshape(size, size)
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = 1
    return mask


def without_brackets(prompt: str) -> str:
    return re.sub(r"\s+", " ", prompt.replace("[", "").replace("]", "")).strip()


def from_mapping_entry(key: str, entry: dict, image: Path) -> BenchEdit:
    """One entry of mapping_file.json, its photo found at `image`; an OptionError names a field that
    is missing or of the wrong type."""
    prompts = [entry.get(field) for field in ("original_prompt", "editing_prompt")]
    for field, prompt in zip(("original_prompt", "editing_prompt"), prompts):
        if not isinstance(prompt, str) or not without_brackets(prompt):
            raise OptionError(field, f"expected the caption as text, edited words in [brackets]; got {prompt!r:.60}")
    blended = entry.get("blended_word", "")
    if not isinstance(blended, str):
        raise OptionError("blended_word", f"expected the source and target words as text, e.g. \"cat dog\" "
                                          f"(or \"\"); got {blended!r:.60}")
    runs = entry.get("mask")
    integers = isinstance(runs, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in runs)
    if runs is not None and (not integers or len(runs) % 2 or any(start < -MASK_SIZE ** 2 for start in runs[0::2])):
        raise OptionError("mask", f"expected run-length pairs [start, length, ...] of whole numbers, starts at least "
                                  f"-{MASK_SIZE ** 2}; got {runs!r:.60}")
    edit_type = entry.get("editing_type_id", "")
    if not isinstance(edit_type, (str, int)) or isinstance(edit_type, bool):
        raise OptionError("editing_type_id", f"expected an id such as \"1\"; got {edit_type!r:.60}")
    words = blended.split()
    return BenchEdit(
        key=str(key), image=image,
        source_prompt=without_brackets(prompts[0]),
        target_prompt=without_brackets(prompts[1]),
        blend_words=(words[0], words[1]) if len(words) == 2 else None,
        mask=None if runs is None else decode_mask(runs),  # [] is the border alone, as PIE-Bench reads it
        edit_type=str(edit_type),
    )
