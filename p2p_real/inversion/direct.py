"""Direct Inversion (Ju et al. 2024, "PnP Inversion"): keep the plain empty-prompt embedding and
instead record, per step, the latent offset that puts guided sampling back on the DDIM-inversion
trajectory. Sampling (and editing's source branch) adds the offsets and retraces the photo."""
from __future__ import annotations

import torch

from ..sampling import Denoise, ddim_sample
from ..schedule import Schedule


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

    def back_onto_the_pivot(index: int, latents: torch.Tensor) -> torch.Tensor:
        pivot = trajectory[-index - 2]
        offsets.append(pivot - latents)
        return pivot

    ddim_sample(denoise, trajectory[-1], schedule, conditional, unconditional.expand(schedule.num_steps, -1, -1, -1),
                guidance_scale, after_step=back_onto_the_pivot)
    return torch.stack(offsets)

