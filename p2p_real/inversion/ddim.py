"""DDIM inversion (Song et al. 2021; Mokady et al. 2023, sec. 3.1): run the deterministic sampler
backwards with the conditional prediction only (guidance 1), keeping every latent. On a flow
model the schedule's step is Euler's, and this is Euler inversion (p2p_real/flow_schedule.py)."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..sampling import Denoise
from ..schedule import Schedule


@torch.no_grad()
def ddim_invert(denoise: Denoise, latents: torch.Tensor, conditional: torch.Tensor, schedule: Schedule,
                disable: bool = True) -> torch.Tensor:
    """Return the pivot trajectory (steps + 1, B, C, h, w): index 0 is the photo's latent, -1 is x_T.

    The step up to timestep t evaluates the model at t on the latent one level below, as the
    papers' `next_step` and diffusers' `DDIMInverseScheduler` do.
    """
    trajectory = [latents]
    for timestep in tqdm(schedule.timesteps.flip(0).tolist(), desc="DDIM inversion", leave=False, disable=disable):
        prediction = denoise(latents, timestep, conditional)
        latents = schedule.inverse_step(prediction, timestep, latents)
        trajectory.append(latents)
    return torch.stack(trajectory)
