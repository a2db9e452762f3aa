"""The scores of an edit in PIE-Bench's form (Ju et al. 2024): fidelity to the source against
success of the edit, and the metric networks behind them."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..images import to_pil, to_tensor
from . import metrics


@dataclass
class MetricModels:
    """The networks behind LPIPS, CLIP score and structure distance; any may be absent."""

    lpips: object | None = None
    clip: object | None = None
    structure: object | None = None

    @classmethod
    def load(cls, names: set[str], weights: str = "pretrained", device=None, lpips_net: str = "alex",
             clip_model: str | None = None, structure_model: str | None = None) -> "MetricModels":
        """weights="random" builds small random networks offline: plumbing runs only, not scores.
        PIE-Bench's own choices: LPIPS on SqueezeNet, CLIP ViT-L/14, DINO ViT-B/8."""
        random = weights == "random"
        models = cls()
        if "lpips" in names:
            from .lpips_metric import LPIPS

            models.lpips = LPIPS(lpips_net, weights, device)
        if "clip" in names:
            from .clip_score import DEFAULT_CLIP, ClipScore

            models.clip = ClipScore.random() if random else ClipScore.load(clip_model or DEFAULT_CLIP, device)
        if "structure" in names:
            from .structure import DEFAULT_DINO, StructureDistance

            models.structure = (StructureDistance.random() if random
                                else StructureDistance.load(structure_model or DEFAULT_DINO, device))
        return models


def edit_scores(result, entry, metric_models: MetricModels) -> dict[str, float]:
    """PIE-Bench's columns: structure distance; PSNR, LPIPS, MSE, SSIM outside the edit mask;
    CLIP score of the whole edit and of the edited region (NaN where no mask or no network)."""
    source, edited = to_tensor([to_pil(result.source), to_pil(result.edited)]).split(1)
    nan = float("nan")
    scores = dict.fromkeys(("structure", "psnr_bg", "lpips_bg", "mse_bg", "ssim_bg", "clip_whole", "clip_edited"), nan)
    if metric_models.structure is not None:
        scores["structure"] = float(metric_models.structure(edited, source)[0])
    if metric_models.clip is not None:
        scores["clip_whole"] = float(metric_models.clip(edited, [entry.target_prompt])[0])
    if entry.mask is not None:
        mask = torch.nn.functional.interpolate(torch.from_numpy(entry.mask)[None, None], size=source.shape[2:],
                                               mode="nearest")
        scores.update(background_scores(edited, source, mask, metric_models.lpips))
        if metric_models.clip is not None:
            scores["clip_edited"] = float(metric_models.clip(metrics.masked(edited, mask), [entry.target_prompt])[0])
    return scores


def background_scores(edited: torch.Tensor, source: torch.Tensor, mask: torch.Tensor, lpips=None) -> dict[str, float]:
    """PIE-Bench's fidelity outside the edit: PSNR, MSE, SSIM (and LPIPS given its network) of one
    (1, 3, H, W) pair with the edited region, mask (1, 1, H, W) = 1, blacked out in both."""
    edited_bg, source_bg = metrics.background(edited, mask), metrics.background(source, mask)
    scores = {"psnr_bg": float(metrics.psnr(edited_bg, source_bg)[0]),
              "mse_bg": float(metrics.mse(edited_bg, source_bg)[0]),
              "ssim_bg": float(metrics.ssim(edited_bg, source_bg)[0])}
    if lpips is not None:
        scores["lpips_bg"] = float(lpips(edited_bg, source_bg)[0])
    return scores
