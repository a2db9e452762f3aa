"""Null-text optimisation (Mokady et al. 2023, Algorithm 1): per timestep, tune the unconditional
("null") text embedding so that guided DDIM sampling retraces the DDIM-inversion trajectory."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..defaults import DEFAULT_GUIDANCE
from ..sampling import Denoise, guide
from ..schedule import Schedule
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
    guidance_scale: float = DEFAULT_GUIDANCE,
    options: NullTextOptions = NullTextOptions(),
    disable: bool = True,
) -> NullTextResult:
    """Optimise one null-text embedding per timestep for a batch of photos.

    trajectory: (steps + 1, B, C, h, w) from `ddim_invert`; conditional and unconditional: (B, L, D).
    Photos in a batch are independent: each has its own loss and its own early stop, applied as a
    masked update, so a batch gives each photo exactly what it would get alone. With
    `stop_batch_early` one boolean is read back per iteration.
    """
    latents = trajectory[-1]
    inner = InnerSteps(denoise, schedule, latents, unconditional, guidance_scale, options)
    embeddings, final_losses, inner_steps = [], [], []
    for index, timestep in enumerate(tqdm(schedule.timesteps.tolist(), desc="null-text", leave=False, disable=disable)):
        with torch.no_grad():
            conditional_prediction = denoise(latents, timestep, conditional)  # once per timestep, reused
        inner.start(index, timestep, latents, trajectory[-index - 2], conditional_prediction)
        for _ in range(options.num_inner_steps):
            inner.step()
            if options.stop_batch_early and not inner.active.any():
                break
        with torch.no_grad():
            embedding = inner.embedding.detach().clone()
            prediction = guide(denoise(latents, timestep, embedding), conditional_prediction, guidance_scale)
            latents = schedule.step(prediction, timestep, latents)
        embeddings.append(embedding)
        final_losses.append(inner.losses.clone())
        inner_steps.append(inner.steps_taken.clone())
    return NullTextResult(torch.stack(embeddings), latents, torch.stack(final_losses), torch.stack(inner_steps))


class InnerSteps:
    """One timestep's Adam iterations on the null embeddings of a batch, as in-place work on tensors
    that live across timesteps (inputs, the embedding, Adam's state, the early-stop mask).

    Each timestep restarts Adam (the reference makes a new optimiser per timestep): `start` zeroes
    its state in place rather than making a new one.
    """

    def __init__(self, denoise: Denoise, schedule: Schedule, latents: torch.Tensor, unconditional: torch.Tensor,
                 guidance_scale: float, options: NullTextOptions):
        self.denoise, self.schedule, self.guidance_scale, self.options = denoise, schedule, guidance_scale, options
        device, batch = latents.device, latents.shape[0]
        self.latents, self.target, self.conditional_prediction = (torch.empty_like(latents) for _ in range(3))
        self.timestep = 0
        # the step's two levels (DDIM: alpha_bar(t), alpha_bar(t - T/n); flow: two sigmas), in float64
        # like the numbers the schedule's `step` computes with
        self.levels = torch.zeros(2, dtype=torch.float64, device=device)
        self.threshold = torch.zeros((), device=device)
        self.embedding = unconditional.detach().clone().requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.embedding], lr=options.learning_rate, eps=1e-8 * options.loss_scale)
        self.active = torch.ones(batch, dtype=torch.bool, device=device)
        self.steps_taken = torch.zeros(batch, dtype=torch.long, device=device)
        self.losses = torch.zeros(batch, device=device)

    def start(self, index: int, timestep: int, latents, target, conditional_prediction) -> None:
        """Set up timestep `index`: its inputs, its rate lr * (1 - i/100), its threshold, a fresh Adam."""
        with torch.no_grad():
            for buffer, value in ((self.latents, latents), (self.target, target),
                                  (self.conditional_prediction, conditional_prediction)):
                buffer.copy_(value)
            self.timestep = timestep
            self.levels.copy_(torch.tensor(self.schedule.levels(timestep), dtype=torch.float64))
            self.threshold.fill_(self.options.early_stop_epsilon + index * self.options.early_stop_slope)
            self.optimizer.param_groups[0]["lr"] = self.options.learning_rate * (1 - index / 100)
            for value in self.optimizer.state[self.embedding].values():  # step, exp_avg, exp_avg_sq (empty at first)
                value.zero_()
            self.active.fill_(True)
            self.steps_taken.zero_()
            self.losses.zero_()

    def step(self) -> None:
        """One Adam iteration for the photos still above their threshold; stopped photos stay frozen."""
        options = self.options
        unconditional_prediction = self.denoise(self.latents, self.timestep, self.embedding)
        prediction = guide(unconditional_prediction, self.conditional_prediction, self.guidance_scale)
        reconstructed = self.schedule.step_between(prediction, self.latents, self.levels[0], self.levels[1])
        per_photo = (reconstructed - self.target).pow(2).flatten(1).mean(1)  # (B,) MSE of each photo
        self.optimizer.zero_grad(set_to_none=True)
        (per_photo.sum() * options.loss_scale).backward()  # the sum keeps each photo's gradient its own
        previous = self.embedding.detach().clone()
        self.optimizer.step()
        with torch.no_grad():
            # Photos that already stopped keep their embedding: a masked update.
            self.embedding.copy_(torch.where(self.active[:, None, None], self.embedding, previous))
            self.losses.copy_(torch.where(self.active, per_photo.detach(), self.losses))
            self.steps_taken += self.active
            self.active &= per_photo.detach() >= self.threshold
