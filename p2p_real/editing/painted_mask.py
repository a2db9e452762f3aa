"""A painted mask: the region of the photo a user allows an edit to change, on the latent grid.

White (or, in an image with transparency, opaque) means edit, black (transparent) means keep. The
mask lines up with the photo as given: it is centre-cropped as the photo is, resized to the photo's
resolution, then averaged over each latent cell (the block of pixels one latent stands for, 8x8 in
SD), and a cell is edited when more than half of it is painted: the binary grid closest to what was
painted. There is no dilation, unlike LocalBlend's 3x3 max-pool: that widens coarse attention maps
that under-cover their object, whereas a painted black promises "keep", which a dilation would
break by a cell (8 pixels in SD) all round. The VAE's decoder already softens the seam.

LocalBlend (local_blend.py) keeps the source's latents outside the region after every step, from the
first, since the region is known from the start; with blend words too, the edit changes only where
both the painting and the words' attention say so.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import OptionError
from ..images import to_rgb

PAINTED_FRACTION = 0.5  # a latent cell is edited when more than this share of its pixels is painted
OPAQUE = 255

Mask = torch.Tensor | Image.Image


def painted_values(mask: Mask) -> torch.Tensor:
    """A mask as given -> (H, W) float32 in [0, 1], 1 = edit: a tensor as it is; an image's alpha
    when it has transparency (some pixel not fully opaque), else its brightness. Editors save
    black-and-white masks as RGBA with an alpha of all 255, which as alpha would mean "edit all"."""
    if isinstance(mask, Image.Image):
        if mask.has_transparency_data:
            alpha = np.asarray(mask.convert("RGBA").getchannel("A"))
            if alpha.min() < OPAQUE:
                return torch.from_numpy(alpha.astype(np.float32) / OPAQUE)
        return torch.from_numpy(np.asarray(to_rgb(mask).convert("L"), dtype=np.float32) / OPAQUE)
    if not isinstance(mask, torch.Tensor):
        raise OptionError("mask", f"expected a float tensor (H, W) in [0, 1] or a PIL image, got {type(mask).__name__}")
    if mask.ndim != 2 or min(mask.shape) < 1 or mask.is_complex():
        raise OptionError("mask", f"expected a real tensor of shape (H, W), "
                                  f"got {mask.dtype} of shape {tuple(mask.shape)}")
    values = mask.detach().to("cpu", torch.float32)
    if not torch.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise OptionError("mask", f"expected values in [0, 1] (1 = edit, 0 = keep), "
                                  f"got {values.min():g} to {values.max():g}")
    return values


def latent_region(values: torch.Tensor, photo_size: tuple[int, int], latent_size: tuple[int, int]) -> torch.Tensor:
    """values (H, W) in [0, 1] -> (h, w) float, 1 in the latent cells more than half painted, 0 elsewhere."""
    height, width = values.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2  # images.center_square's crop of the photo
    square = values[top : top + side, left : left + side][None, None]  # (1, 1, side, side)
    at_photo = F.interpolate(square, size=tuple(photo_size), mode="area")
    cells = F.interpolate(at_photo, size=tuple(latent_size), mode="area")  # the painted share of each cell
    region = cells[0, 0] > PAINTED_FRACTION
    if not region.any():
        cell = f"{photo_size[0] // latent_size[0]}x{photo_size[1] // latent_size[1]}"
        raise OptionError("mask", f"no latent cell ({cell} pixels of the photo) is more than half white, "
                                  f"so nothing would be edited; paint the region to edit white (black keeps), "
                                  f"and larger")
    return region.float()


def latent_regions(mask: Mask | Sequence[Mask | None] | None, count: int, photo_size: tuple[int, int],
                   latent_size: tuple[int, int]) -> list[torch.Tensor | None]:
    """One (h, w) region per target, None where a target has no mask: `mask` is one mask for all
    `count` targets, or a list with one (or None) each."""
    if mask is None:
        return [None] * count
    masks = list(mask) if isinstance(mask, (list, tuple)) else [mask] * count
    if len(masks) != count:
        raise OptionError("mask", f"{count} targets but {len(masks)} masks; give one for all or one (or None) each")
    return [None if each is None else latent_region(painted_values(each), photo_size, latent_size) for each in masks]
