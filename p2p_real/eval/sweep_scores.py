"""The two scores of each edit of a sweep (one photo, one target, many strengths), from the existing
metrics: fidelity to the photo outside the edit's region (PIE-Bench's background PSNR and LPIPS,
`scores.edit_scores`), and how well the edit shows its target (CLIP score, or what an `EditReader`
the caller passes reads back: on the shapes model, the share of the target's colour and shape).

The region is one mask for the whole grid, so that every setting is scored on the same pixels: with
LocalBlend, the pixels that every setting's mask covers. Each setting's own mask would reward a large
one (the more it covers, the fewer pixels are compared); outside the common core, a setting whose
mask spills further over the photo changes more of it, and pays for that. Without LocalBlend there is
no region, and fidelity is the whole picture's.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import torch

from .scores import MetricModels, edit_scores

PSNR_CAP = 100.0  # dB for pictures identical where compared: uint8 pictures that differ at all stay below ~90 dB


class EditReader(NamedTuple):
    """What reads an edit back instead of CLIP: `read(edited, target)`, (H, W, 3) uint8 and the target
    caption, gives a row's readings; the one named `score` is the edit score. `axis`: the edit axis
    in a plot's words, and in a record's."""

    read: Callable[[torch.Tensor, str], dict]
    score: str
    axis: tuple[str, str]


class ScoredTarget(NamedTuple):
    """What edit_scores reads of a benchmark entry."""

    target_prompt: str
    mask: np.ndarray  # (h, w) float32 in {0, 1}: 1 = the region edited


def common_mask(masks: list[torch.Tensor | None], size: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 in {0, 1}: the region that every LocalBlend mask (each (1, h, w)) covers. All
    zeros, so that fidelity is the whole picture's, when the edits had no LocalBlend, or when that
    region is the whole picture (attention spread over all of it), which would leave nothing to compare."""
    present = [mask for mask in masks if mask is not None]
    if not present:
        return np.zeros(size, dtype=np.float32)
    core = torch.stack([mask.float().cpu() for mask in present]).amin(0)[0].numpy()  # 1 where all cover
    return np.zeros(size, dtype=np.float32) if core.all() else core.astype(np.float32)


def sweep_scores(results: list, target: str, metric_models: MetricModels, mask: np.ndarray,
                 reader: EditReader | None = None) -> list[dict]:
    """Per EditResult: psnr_bg (the fidelity axis), lpips_bg, ssim_bg, clip (whole picture),
    clip_edited (inside the mask, with LocalBlend), the reader's readings, and `edit_score`, the edit axis."""
    entry = ScoredTarget(target, mask)
    rows = []
    for result in results:
        scores = edit_scores(result, entry, metric_models)
        row = {"psnr_bg": min(scores["psnr_bg"], PSNR_CAP), "lpips_bg": scores["lpips_bg"],
               "ssim_bg": scores["ssim_bg"],
               "structure": scores["structure"],
               "clip": scores["clip_whole"], "clip_edited": scores["clip_edited"] if mask.any() else math.nan}
        if reader is not None:
            row.update(reader.read(result.edited, target))
        row["edit_score"] = row["clip"] if reader is None else row[reader.score]
        rows.append(row)
    return rows
