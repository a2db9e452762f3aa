"""PIE-Bench's evaluation protocol (Ju et al. 2024), metric by metric, as its authors' code runs it
(cure-lab/PnPInversion, evaluation/evaluate.py and evaluation/matrics_calculator.py), so that
`bench edit`'s numbers sit beside the papers' tables. Quirks kept on purpose (docs/PIE_BENCH.md):

- Background metrics (PSNR, LPIPS, MSE, SSIM of both images times 1 - mask, `metrics.background`)
  are NaN when the mask covers the whole image (evaluate.py's `(1-src_mask).sum()==0`), and such
  entries are left out of the means; the one-pixel border that mask decoding marks as edited means
  a mask never covers nothing.
- Structure distance sees the whole images as 0-255 values, normalised with ImageNet's [0, 1]
  statistics, and resized without antialiasing (torchvision 0.13's tensor Resize, PnPInversion's
  pinned version). The input Splice intended is behind `Protocol(structure_pixels="splice")`.
- CLIP scores see 8-bit images resized by PIL's bicubic filter (the CLIPProcessor of transformers
  4, which torchmetrics' CLIPScore calls on the uint8 arrays); the edited region is the 8-bit image
  times the mask, so its resize is clamped and rounded like any other image's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..images import to_pil, to_tensor
from . import metrics
from .scores import background_scores

# "pie-bench": 0-255 values, resized without antialiasing, as the reference; "splice": [0, 1] values,
# antialiased resize, the input DINO and Splice's extractor were made for (a deviation from the papers).
STRUCTURE_PIXELS = ("pie-bench", "splice")
COLUMNS = ("structure", "psnr_bg", "lpips_bg", "mse_bg", "ssim_bg", "clip_whole", "clip_edited")


@dataclass(frozen=True)
class Protocol:
    """How `bench edit` scores; the default is PIE-Bench's own. Recorded in edit.json."""

    structure_pixels: str = "pie-bench"

    def __post_init__(self):
        if self.structure_pixels not in STRUCTURE_PIXELS:
            raise ValueError(f"structure pixels {self.structure_pixels!r}: choose from {', '.join(STRUCTURE_PIXELS)}")

    def record(self) -> dict:
        """What edit.json says about how its numbers were made."""
        deviations = [] if self.structure_pixels == "pie-bench" else [
            "structure distance on [0, 1] pixels with an antialiased resize (PIE-Bench: 0-255, no antialiasing)"]
        return {"name": "pie-bench", **asdict(self), "deviations": deviations}


def pie_bench_scores(result, entry, metric_models, protocol: Protocol = Protocol()) -> dict[str, float]:
    """The columns of one edited entry (an EditResult and its BenchEdit), as `image_scores`."""
    source, edited = to_tensor([to_pil(result.source), to_pil(result.edited)]).split(1)
    return image_scores(source, edited, entry.mask, entry.target_prompt, metric_models, protocol)


def image_scores(source: torch.Tensor, edited: torch.Tensor, mask: np.ndarray | None, prompt: str, metric_models,
                 protocol: Protocol = Protocol()) -> dict[str, float]:
    """PIE-Bench's columns for (1, 3, H, W) images in [0, 1] (8-bit values) and the entry's decoded
    (512, 512) mask, 1 = edited (resized to the images' size, nearest): NaN where a network is
    absent, where there is no mask, and for the background metrics where the mask covers everything."""
    nan = float("nan")
    scores = dict.fromkeys(COLUMNS, nan)
    if metric_models.structure is not None:
        scores["structure"] = float(structure_distance(metric_models.structure, edited, source, protocol)[0])
    if metric_models.clip is not None:
        scores["clip_whole"] = float(clip_score(metric_models.clip, edited, prompt)[0])
    if mask is None:
        return scores
    mask = F.interpolate(torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None], size=source.shape[2:],
                         mode="nearest")  # (1, 1, H, W)
    if (1 - mask).sum() > 0:  # evaluate.py: "nan" where nothing lies outside the edit
        scores.update(background_scores(edited, source, mask, metric_models.lpips))
    if metric_models.clip is not None and mask.sum() > 0:
        scores["clip_edited"] = float(clip_score(metric_models.clip, metrics.masked(edited, mask), prompt)[0])
    return scores


def structure_distance(structure, images: torch.Tensor, references: torch.Tensor, protocol: Protocol) -> torch.Tensor:
    """(B,) structure distances with the protocol's input: see the module docstring."""
    reference = protocol.structure_pixels == "pie-bench"
    configured = replace(structure, pixel_scale=255.0 if reference else 1.0, antialias=not reference)
    return configured(images, references)


def clip_score(clip, images: torch.Tensor, prompt: str) -> torch.Tensor:
    """(B,) CLIP scores of 8-bit images resized as the reference's CLIPProcessor resizes them."""
    return clip(clip_pixels(images, clip.image_size).to(images.device), [prompt] * images.shape[0])


def clip_pixels(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, S, S) in [0, 1], S = `size`: rounded to 8 bits, the shorter
    side resized to S by PIL's bicubic filter (the longer one to int(S * long / short)), centre
    cropped; transformers 4's CLIPImageProcessor before its rescale and normalisation. ClipScore's
    own resize then leaves the S x S images as they are."""
    cropped = []
    for image in images:
        array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        height, width = array.shape[:2]
        short, long = min(height, width), max(height, width)
        new_long = int(size * long / short)
        new_height, new_width = (new_long, size) if width <= height else (size, new_long)
        resized = np.asarray(Image.fromarray(array).resize((new_width, new_height), Image.BICUBIC))  # (h, w, 3)
        top, left = (new_height - size) // 2, (new_width - size) // 2
        cropped.append(torch.from_numpy(resized[top : top + size, left : left + size].copy()))
    return torch.stack(cropped).permute(0, 3, 1, 2).float() / 255  # (B, 3, S, S)
