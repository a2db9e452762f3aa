"""Pixel measures of the shapes evaluation: colour distances, centroids, grown masks and the PSNR
of a picture's background, all read from (H, W, 3) uint8 pictures, so no learned metric is needed."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..eval.metrics import background, psnr

PSNR_CAP = 100.0  # dB for identical images: uint8 pictures that differ at all stay below ~90 dB


def rgb_distance(a, b) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=np.float64)))


def centroid(mask: np.ndarray) -> tuple[float, float]:
    rows, columns = np.nonzero(mask)
    return float(columns.mean()), float(rows.mean())


def dilate(mask: np.ndarray) -> np.ndarray:
    """Grow a mask by 1/32 of the side (2 pixels at 64), so anti-aliased edges count as the object."""
    radius = max(1, round(mask.shape[0] / 32))
    grown = F.max_pool2d(torch.tensor(mask, dtype=torch.float32)[None, None], 2 * radius + 1, stride=1, padding=radius)
    return grown[0, 0].bool().numpy()


def background_psnr(image: torch.Tensor, reference: torch.Tensor, region: np.ndarray) -> float:
    """PSNR outside `region`, PIE-Bench's way (`eval.metrics.background`: both images blacked out
    inside it, whole-image PSNR), of (H, W, 3) uint8 pictures; identical ones score PSNR_CAP."""
    mask = torch.tensor(region, dtype=torch.float32)[None, None]
    value = psnr(background(as_batch(image), mask), background(as_batch(reference), mask))
    return min(float(value[0]), PSNR_CAP)


def as_batch(picture: torch.Tensor) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1], the metrics' convention."""
    return picture.permute(2, 0, 1)[None].float() / 255
