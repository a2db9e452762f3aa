"""Classifier-free guidance and deterministic DDIM sampling, written against the `denoise` seam.

`denoise(latents, timestep, embeddings) -> prediction` is the only way these functions touch a
model, so inversion, editing and the benchmarks share one loop.
"""
from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm

from .schedule import Schedule, ddim_step

Denoise = Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]


def guided_prediction(denoise: Denoise, latents, timestep: int, unconditional, conditional, guidance_scale: float):
    """eps_u + w (eps_c - eps_u), both halves in one batched call (Ho & Salimans 2022)."""
    batch = latents.shape[0]
    prediction = denoise(torch.cat([latents, latents]), timestep, torch.cat([unconditional, conditional]))
    unconditional_prediction, conditional_prediction = prediction.split(batch)
    return unconditional_prediction + guidance_scale * (conditional_prediction - unconditional_prediction)


@torch.no_grad()
def ddim_sample(
    denoise: Denoise,
    noise_latents: torch.Tensor,
    conditional: torch.Tensor,
    unconditional_per_step: torch.Tensor,
    schedule: Schedule,
    guidance_scale: float,
    disable: bool = True,
) -> torch.Tensor:
    """Run DDIM from x_T to x_0 with guidance; `unconditional_per_step` is (steps, B, L, D).

    Null-text inversion's optimised embeddings go in as they are; a plain empty-prompt
    embedding is passed expanded over the steps.
    """
    latents = noise_latents
    for index, timestep in enumerate(tqdm(schedule.timesteps.tolist(), desc="sampling", leave=False, disable=disable)):
        prediction = guided_prediction(denoise, latents, timestep, unconditional_per_step[index], conditional, guidance_scale)
        latents = ddim_step(schedule, prediction, timestep, latents)
    return latents
