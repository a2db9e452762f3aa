"""Null-text optimisation (Mokady et al. 2023, Algorithm 1): per timestep, tune the unconditional
("null") text embedding so that guided DDIM sampling retraces the DDIM-inversion trajectory."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..sampling import Denoise, guide
from ..schedule import Schedule, ddim_step
from .options import NullTextOptions


@dataclass
class NullTextResult:
    null_text_embeddings: torch.Tensor  # (steps, B, L, D), the embedding to use at each sampling step
    reconstruction_latents: torch.Tensor  # (B, C, h, w): x_0 where the optimisation's own guided steps ended
    final_losses: torch.Tensor  # (steps, B): the last inner loss of each timestep
    inner_steps: torch.Tensor  # (steps, B): Adam iterations each photo took per timestep


def null_text_optimize(
    denoise: Denoise,
    trajectory: torch.Tensor,
    conditional: torch.Tensor,
    unconditional: torch.Tensor,
    schedule: Schedule,
    guidance_scale: float = 7.5,
    options: NullTextOptions = NullTextOptions(),
    disable: bool = True,
) -> NullTextResult:
    """Optimise one null-text embedding per timestep for a batch of photos.

    trajectory: (steps + 1, B, C, h, w) from `ddim_invert`; conditional and unconditional: (B, L, D).
    Photos in a batch are independent: each has its own loss and its own early stop, applied as a
    masked update, so a batch gives each photo exactly what it would get alone.
    """
    batch = trajectory.shape[1]
    latents = trajectory[-1]
    embedding = unconditional.detach().clone()
    embeddings, final_losses, inner_steps = [], [], []
    for index, timestep in enumerate(tqdm(schedule.timesteps.tolist(), desc="null-text", leave=False, disable=disable)):
        target = trajectory[-index - 2]
        with torch.no_grad():
            conditional_prediction = denoise(latents, timestep, conditional)  # once per timestep, reused
        embedding = embedding.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([embedding], lr=options.learning_rate * (1 - index / 100), eps=1e-8 * options.loss_scale)
        threshold = options.early_stop_epsilon + index * options.early_stop_slope
        active = torch.ones(batch, dtype=torch.bool, device=latents.device)
        steps_taken = torch.zeros(batch, dtype=torch.long, device=latents.device)
        losses = torch.zeros(batch, device=latents.device)
        for _ in range(options.num_inner_steps):
            prediction = guide(denoise(latents, timestep, embedding), conditional_prediction, guidance_scale)
            reconstructed = ddim_step(schedule, prediction, timestep, latents)
            per_photo = (reconstructed - target).pow(2).flatten(1).mean(1)  # (B,) MSE of each photo
            optimizer.zero_grad(set_to_none=True)
            (per_photo.sum() * options.loss_scale).backward()  # the sum keeps each photo's gradient its own
            previous = embedding.detach().clone()
            optimizer.step()
            with torch.no_grad():
                # Photos that already stopped keep their embedding: a masked update.
                embedding.copy_(torch.where(active[:, None, None], embedding, previous))
                losses = torch.where(active, per_photo.detach(), losses)
                steps_taken += active
                active &= per_photo.detach() >= threshold
            if options.stop_batch_early and not active.any():
                break
        with torch.no_grad():
            embedding = embedding.detach()
            prediction = guide(denoise(latents, timestep, embedding), conditional_prediction, guidance_scale)
            latents = ddim_step(schedule, prediction, timestep, latents)
        embeddings.append(embedding)
        final_losses.append(losses)
        inner_steps.append(steps_taken)
    return NullTextResult(torch.stack(embeddings), latents, torch.stack(final_losses), torch.stack(inner_steps))
