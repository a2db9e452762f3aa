"""Direct Inversion (Ju et al. 2024, "PnP Inversion"): keep the plain empty-prompt embedding and
instead record, per step, the latent offset that puts guided sampling back on the DDIM-inversion
trajectory. Editing adds the offset to the source branch, which then reproduces the photo exactly."""
from __future__ import annotations

import torch

from ..sampling import Denoise, guided_prediction
from ..schedule import Schedule, ddim_step


@torch.no_grad()
def direct_offsets(
    denoise: Denoise,
    trajectory: torch.Tensor,
    conditional: torch.Tensor,
    unconditional: torch.Tensor,
    schedule: Schedule,
    guidance_scale: float,
) -> torch.Tensor:
    """(steps, B, C, h, w): offset_i = pivot_i - ddim_step(pivot_{i-1}), each step starting on the pivot.

    As PnPInversion's `offset_calculate`: step i starts from the pivot latent (the previous step's
    corrected result), so the offsets hold no accumulated drift.
    """
    offsets = []
    latents = trajectory[-1]
    for index, timestep in enumerate(schedule.timesteps.tolist()):
        target = trajectory[-index - 2]
        prediction = guided_prediction(denoise, latents, timestep, unconditional, conditional, guidance_scale)
        offsets.append(target - ddim_step(schedule, prediction, timestep, latents))
        latents = target
    return torch.stack(offsets)
