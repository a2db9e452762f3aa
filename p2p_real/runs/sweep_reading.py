"""The sweep's edit score on the shapes model: the colour and shape read back from each edit
(shapes/check.py) against the target's, instead of a CLIP score. runs/ chooses it; eval/ only
receives it (eval/sweep_scores.py's `EditReader`)."""
from __future__ import annotations

import torch

from ..errors import P2PError
from ..eval.sweep_scores import EditReader
from ..images import to_pil
from ..shapes.check import parse_caption, read_object

SHAPES_MODEL = "shapes"  # the built-in whose one-object captions shapes/check.py reads
SHAPES_AXIS = ("target's colour and shape read back", "shapes_score: share of the target's colour and shape that "
                                                      "shapes/check.py reads in the edit: 0, 0.5 or 1")


def edit_reader(model_name: str | None, target: str) -> EditReader | None:
    """The shapes model's reader, its target checked to be readable; None for any other model."""
    if model_name != SHAPES_MODEL:
        return None
    try:
        parse_caption(target)
    except ValueError:
        raise P2PError(f"--target {target!r}: the shapes model's edits are read from one-object captions, "
                       f"such as 'a large red circle on a plain white background'; give one") from None
    return EditReader(shapes_reading, "shapes_score", SHAPES_AXIS)


def shapes_reading(edited: torch.Tensor, target: str) -> dict:
    """The colour and shape read from an (H, W, 3) uint8 picture of a one-object scene, and the share
    of the target's two (0, 0.5 or 1) they match."""
    words = parse_caption(target)
    reading = read_object(to_pil(edited), words["background_colour"])
    matches = (reading.colour == words["colour"]) + (reading.shape == words["shape"])
    return {"read_colour": reading.colour, "read_shape": reading.shape, "shapes_score": matches / 2}
