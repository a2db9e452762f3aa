"""The rectified-flow schedule of SD3-style models (Esser et al. 2024) and its Euler steps.

The model predicts a velocity v = noise - x0 along x_sigma = (1 - sigma) x0 + sigma noise, so one
Euler step from sigma to sigma' is x + (sigma' - sigma) v: diffusers' `FlowMatchEulerDiscreteScheduler.step`,
whose sigmas (shifted by the config's `shift`, 3.0 for SD3) are read off the scheduler itself.

Euler inversion is the same step run upwards, with DDIM inversion's rule (p2p_real/schedule.py): the
step up to level sigma_i evaluates the model at timestep t_i on the latent one level below, so
inversion, sampling and null-text all evaluate the model at the sampling timesteps only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import FlowMatchEulerDiscreteScheduler


@dataclass(frozen=True)
class FlowSchedule:
    """Sampling timesteps (descending, sigma * 1000 as the transformer reads them) and their sigmas."""

    timesteps: torch.Tensor  # (num_steps,) float32, descending, e.g. 1000.0, 985.7, ...
    sigmas: tuple[float, ...]  # (num_steps + 1,): the levels, ending at 0 (the photo)
    num_train_timesteps: int

    @classmethod
    def from_scheduler_config(cls, config: dict, num_steps: int) -> "FlowSchedule":
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(config)
        if scheduler.config.use_dynamic_shifting:  # FLUX-style: the shift depends on the image size
            raise ValueError("a flow-matching scheduler with use_dynamic_shifting is not supported (SD3's has a "
                             "fixed shift)")
        if num_steps < 1 or num_steps > scheduler.config.num_train_timesteps:
            raise ValueError(f"num_steps must be between 1 and {scheduler.config.num_train_timesteps}, got {num_steps}")
        scheduler.set_timesteps(num_steps)
        return cls(timesteps=scheduler.timesteps.float().cpu(), sigmas=tuple(scheduler.sigmas.tolist()),
                   num_train_timesteps=scheduler.config.num_train_timesteps)

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    def index(self, timestep: float) -> int:
        return self.timesteps.tolist().index(timestep)

    def levels(self, timestep: float) -> tuple[float, float]:
        """(sigma at `timestep`, the next lower sigma): the two levels of one sampling step."""
        index = self.index(timestep)
        return self.sigmas[index], self.sigmas[index + 1]

    def step_between(self, model_output, latents, level, next_level):
        """One Euler step of the velocity from `level` to `next_level` (numbers or tensors)."""
        return latents + (next_level - level) * model_output

    def step(self, model_output, timestep: float, latents):
        return self.step_between(model_output, latents, *self.levels(timestep))

    def inverse_step(self, model_output, timestep: float, latents):
        """From the level below `timestep` up to its level, the model having been evaluated at `timestep`."""
        level, lower = self.levels(timestep)
        return self.step_between(model_output, latents, lower, level)

    def record(self) -> dict:
        return {"kind": "flow-match-euler", "timesteps": self.timesteps.tolist(), "sigmas": list(self.sigmas)}
