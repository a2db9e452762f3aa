"""The page's mask brush: what a user paints over the photo (Gradio's ImageEditor, whose value is a
dict of `background`, `layers` and `composite` images) made into the mask file that `--mask` takes,
white where the edit may change the photo, black where it keeps it. The strokes are read from the
layers' alpha, not their colour, so the brush's colour and opacity are the page's choice. The file
is written into the photo's folder of OUTPUT (beside its edits), named by its content, so that the
edit's record (mask path and SHA-256, runs/masks.py) points at a file that stays, and the same
painting twice is the same mask and the same edit. Nothing here knows Gradio.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ImageError, P2PError
from ..images import open_image, save_png
from ..runs.naming import inside

EDIT_HERE = "edit only here"  # the painted region is the edit's; the rest is kept
KEEP_THIS = "keep this"  # the painted region is kept; the edit may change the rest
REGIONS = (EDIT_HERE, KEEP_THIS)
MASKS_FOLDER = "painted-masks"  # in OUTPUT/<photo>/, beside the photo's edits
WHITE, BLACK = 255, 0
BRUSH_FRACTION = 10  # the brush's width, as a fraction of the photo's shorter side: a part of a scene at a stroke


def brush_size(photo: str | Path) -> int:
    """The brush's width in the photo's pixels: Gradio's "auto" width is some 40 pixels, most of a
    64-pixel scene of the shapes model, too thick to paint part of it."""
    try:
        width, height = open_image(Path(photo)).size
    except ImageError:
        return 20
    return max(1, round(min(width, height) / BRUSH_FRACTION))


def painted_region(value: dict | None) -> np.ndarray | None:
    """(H, W) bool, True where any layer of the editor's value was painted (its alpha above zero);
    None when nothing was painted (no value, no layers, or only empty ones)."""
    layers = [layer for layer in (value or {}).get("layers") or [] if layer is not None]
    if not layers:
        return None
    size = layers[0].size
    painted = np.zeros(size[::-1], dtype=bool)
    for layer in layers:
        alpha = np.asarray(layer.convert("RGBA").resize(size, Image.Resampling.NEAREST).getchannel("A"))
        painted |= alpha > 0
    return painted if painted.any() else None


def mask_image(painted: np.ndarray, region: str, photo_size: tuple[int, int]) -> Image.Image:
    """The `--mask` picture of a painted region: white to edit, black to keep, at the photo's size
    (width, height), which the canvas may differ from when the editor scaled the photo."""
    if region not in REGIONS:
        raise P2PError(f"the painted region: choose {EDIT_HERE!r} or {KEEP_THIS!r}, not {region!r}")
    edit = painted if region == EDIT_HERE else ~painted
    mask = Image.fromarray(np.where(edit, WHITE, BLACK).astype(np.uint8), mode="L")
    return mask if mask.size == tuple(photo_size) else mask.resize(photo_size, Image.Resampling.NEAREST)


def save_painted_mask(artifact: Path, photo: Path, value: dict | None, region: str) -> Path | None:
    """The painting of `value` as a mask file in `artifact`/painted-masks/, named by its pixels and
    lined up with `photo` (the photo the artifact was inverted from); None when nothing is painted."""
    painted = painted_region(value)
    if painted is None:
        return None
    try:
        photo_size = open_image(photo).size  # turned as its EXIF says, as the photo is read to invert it
    except ImageError:  # moved since: the canvas is the photo the page showed
        photo_size = painted.shape[::-1]
    mask = mask_image(painted, region, photo_size)
    digest = hashlib.sha256(mask.tobytes()).hexdigest()[:16]
    path = inside(artifact, MASKS_FOLDER, f"mask-{digest}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(mask, path, {"painted_on": str(photo), "white": "edit", "black": "keep",
                          "painted_region": region})
    return path
