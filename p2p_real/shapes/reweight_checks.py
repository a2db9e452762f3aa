"""Re-weighting, checked on the shapes model: scale the attention of a caption's colour or size word
over the paper's range of factors, and read whether the object's area or saturation follows."""
from __future__ import annotations

import numpy as np
import torch

from ..editing.edit import edit
from ..editing.options import EditOptions
from ..images import to_pil
from ..models import Model
from .check import far_from_background
from .parts import means

REWEIGHT_FACTORS = (-2.0, -1.0, 0.0, 1.0, 2.0)  # the paper's range, c in [-2, 2]
# The P2P notebook's re-weighting settings: cross-attention edited for 80% of the steps, self-attention
# kept for 40%. With PIE-Bench's 0.4 / 0.6 (the edit defaults) the layout is fixed before the scaled
# attention can act, and on this model the object's area moved by under 1% (measured).
REWEIGHT_OPTIONS = {"cross_replace_steps": 0.8, "self_replace_steps": 0.4}
REWEIGHT_WORDS = ("colour", "size")  # caption words whose attention is scaled


def reweight_sweep(model: Model, inversion, reweights: list[dict[str, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The source branch and one picture per re-weighting of the caption, from one sampling pass."""
    prompt = inversion.prompt
    options = [EditOptions(kind="reweight", reweights=weights, **REWEIGHT_OPTIONS) for weights in reweights]
    results = edit(model, inversion, [prompt] * len(reweights), options)
    return results[0].reconstruction, torch.stack([result.edited for result in results])


def reweight_scores(pictures: torch.Tensor, background_colour: str, word: str, factors) -> dict:
    """Object area (pixels far from the background's colours) and mean HSV saturation per factor,
    and whether each rises (or falls) with the factor, ties allowed."""
    areas, saturations = [], []
    for picture in pictures:
        mask = far_from_background(picture.numpy().astype(np.float64), background_colour)
        saturation = np.asarray(to_pil(picture).convert("HSV"), dtype=np.float64)[..., 1] / 255
        areas.append(int(mask.sum()))
        saturations.append(float(saturation[mask].mean()) if mask.any() else 0.0)
    row = {"word": word, "factors": list(factors), "area": areas, "saturation": saturations}
    for name, values in (("area", areas), ("saturation", saturations)):
        steps = np.diff(values)
        row[f"{name}_up"], row[f"{name}_down"] = bool((steps >= 0).all()), bool((steps <= 0).all())
        # monotone and not flat: a sweep that changes nothing is not a monotone change
        row[f"{name}_monotone"] = (row[f"{name}_up"] or row[f"{name}_down"]) and values[-1] != values[0]
    # from the lowest factor to the highest, relative to the middle factor's area
    row["area_change"] = (areas[-1] - areas[0]) / max(areas[len(areas) // 2], 1)
    return row


def reweight_summary(rows: list[dict]) -> dict:
    directions = ("area_up", "area_down", "saturation_up", "saturation_down", "area_monotone", "saturation_monotone")
    return {
        "mean_area": np.mean([row["area"] for row in rows], axis=0).tolist(),
        "mean_saturation": np.mean([row["saturation"] for row in rows], axis=0).tolist(),
        **means(rows, directions),
        "area_or_saturation_monotone": float(np.mean([row["area_monotone"] or row["saturation_monotone"]
                                                      for row in rows])),
        "mean_abs_area_change": float(np.mean([abs(row["area_change"]) for row in rows])),
    }
