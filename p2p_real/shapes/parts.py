"""What the parts of the shapes evaluation share: held-out scenes, the settings every part starts
from, a part's result (`Part`), the means that summarise its rows and the figures that show them.

Scenes come from seed 1000 (training draws seed 0), so the model has seen none of them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from ..defaults import DEFAULT_GUIDANCE
from ..images import grid, to_pil
from ..inversion.options import NullTextOptions
from ..models import Model
from .scenes import Scene, scene_at

HELD_OUT_SEED = 1000  # training uses seed 0
GUIDANCE = DEFAULT_GUIDANCE
EXAMPLES = 4  # scenes shown in each figure
NULL_TEXT = NullTextOptions()  # the paper's settings


@dataclass(frozen=True)
class Part:
    """One part's means (`summary`), one row per scene (`rows`) and figures to save as PNGs."""

    summary: dict
    rows: list[dict]
    figures: dict[str, Image.Image] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"summary": self.summary, "scenes": self.rows}


def held_out(model: Model, count: int, seed: int, max_objects: int) -> list[Scene]:
    return [scene_at(seed, index, model.resolution, max_objects) for index in range(count)]


def pick(scores: dict, keys) -> dict:
    return {key: float(scores[key]) for key in keys}


def means(rows: list[dict], keys) -> dict:
    """Mean of each key over the rows that have a finite value (booleans give rates); None if none."""
    result = {}
    for key in keys:
        values = [float(row[key]) for row in rows if row.get(key) is not None and math.isfinite(float(row[key]))]
        result[key] = sum(values) / len(values) if values else None
    return result


def figure(rows: list[list[tuple[torch.Tensor, str]]]) -> Image.Image:
    """Rows of labelled (H, W, 3) uint8 pictures, enlarged without smoothing to ~192 pixels each."""
    side = rows[0][0][0].shape[0]
    scale = max(1, 192 // side)
    strips = [grid([to_pil(picture).resize((side * scale,) * 2, Image.Resampling.NEAREST) for picture, _ in row],
                   [text for _, text in row]) for row in rows]
    canvas = Image.new("RGB", (max(strip.width for strip in strips), sum(strip.height for strip in strips)), "white")
    for number, strip in enumerate(strips):
        canvas.paste(strip, (0, sum(other.height for other in strips[:number])))
    return canvas


def plain(value):
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
