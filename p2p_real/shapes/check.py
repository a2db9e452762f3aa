"""Does a picture show what its caption says? A colour and shape reader for one-object scenes,
to score how well the shapes model follows its text (issue 6) without a learned classifier.

The object is whatever lies far from the background's colour range (its colour and the pattern's
second tone); its colour is the nearest named colour to the median of those pixels; its shape is the
template, drawn by the scene generator at the object's centre and reach, that overlaps it best.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .scenes import COLOURS, MAX_ROTATION, SHAPES, SceneObject, pattern_shade, render_scene

OBJECT_DISTANCE = 60.0  # RGB distance from the background's colour range beyond which a pixel is the object


@dataclass(frozen=True)
class Reading:
    colour: str
    shape: str
    overlap: float  # intersection over union of the best template with the object's pixels
    mask: np.ndarray  # (H, W) bool: the pixels read as the object


def parse_caption(caption: str) -> dict[str, str]:
    """'a large red circle on a plain white background' -> its five words; one object only."""
    words = caption.split(" ")
    if len(words) != 9 or words[0] != "a" or words[4:6] != ["on", "a"] or words[8] != "background":
        raise ValueError(f"not a one-object scene caption: {caption!r}")
    return {"size": words[1], "colour": words[2], "shape": words[3], "background": words[6],
            "background_colour": words[7]}


def read_object(image: Image.Image, background_colour: str) -> Reading:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)  # (H, W, 3)
    mask = far_from_background(pixels, background_colour)
    if mask.sum() < 4:
        return Reading("none", "none", 0.0, mask)
    median = np.median(pixels[mask], axis=0)
    candidates = {name: rgb for name, rgb in COLOURS.items() if name != background_colour}
    colour = min(candidates, key=lambda name: np.linalg.norm(median - np.asarray(candidates[name])))
    shape, overlap = best_template(mask, colour, background_colour)
    return Reading(colour, shape, overlap, mask)


def far_from_background(pixels: np.ndarray, background_colour: str) -> np.ndarray:
    """Pixels whose distance to the segment between the background colour and its pattern tone is large."""
    start = np.asarray(COLOURS[background_colour], dtype=np.float64)
    end = np.asarray(pattern_shade(COLOURS[background_colour]), dtype=np.float64)
    direction = end - start
    t = np.clip(((pixels - start) @ direction) / max(direction @ direction, 1e-9), 0, 1)  # (H, W)
    nearest = start + t[..., None] * direction
    return np.linalg.norm(pixels - nearest, axis=-1) > OBJECT_DISTANCE


def best_template(mask: np.ndarray, colour: str, background_colour: str) -> tuple[str, float]:
    rows, columns = np.nonzero(mask)
    centre = (columns.mean() + 0.5, rows.mean() + 0.5)  # every shape's centroid is its centre
    reach = float(np.sqrt((columns + 0.5 - centre[0]) ** 2 + (rows + 0.5 - centre[1]) ** 2).max()) + 0.5
    best = ("none", -1.0)
    for shape in SHAPES:
        for rotation in ([0.0] if shape == "circle" else np.linspace(-MAX_ROTATION, MAX_ROTATION, 11)):
            template = render_scene([SceneObject(shape, colour, "large", centre, reach, float(rotation))], "plain",
                                    background_colour, size=mask.shape[0]).masks[0]
            overlap = (template & mask).sum() / max((template | mask).sum(), 1)
            if overlap > best[1]:
                best = (shape, float(overlap))
    return best


def follows_caption(image: Image.Image, caption: str) -> dict[str, bool]:
    """Whether the picture's object has the caption's colour and shape."""
    words = parse_caption(caption)
    reading = read_object(image, words["background_colour"])
    return {"colour": reading.colour == words["colour"], "shape": reading.shape == words["shape"]}
