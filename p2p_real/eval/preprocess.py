"""Image resizing shared by the metric networks' preprocessing."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_shorter_side(images: torch.Tensor, size: int, mode: str, max_size: int | None = None,
                        antialias: bool = True) -> torch.Tensor:
    """Resize (B, C, H, W) so that the shorter side is `size` (the longer one capped at `max_size`),
    keeping the aspect ratio; sizes rounded down as torchvision's Resize(size, max_size) does.
    antialias=False is torchvision's tensor Resize before 0.17 (PIE-Bench's structure distance)."""
    height, width = images.shape[-2:]
    short, long = min(height, width), max(height, width)
    new_short, new_long = size, int(size * long / short)
    if max_size is not None and new_long > max_size:
        new_short, new_long = int(max_size * new_short / new_long), max_size
    new_height, new_width = (new_long, new_short) if width <= height else (new_short, new_long)
    if (new_height, new_width) == (height, width):
        return images
    return F.interpolate(images, size=(new_height, new_width), mode=mode, align_corners=False, antialias=antialias)
