"""The DDIM schedule of a model, and the two deterministic DDIM steps (Song et al. 2021, eq. 12, eta=0).

Everything here is a pure function of a `Schedule` built once from the model's own scheduler config,
so that SD 1.x (epsilon) and SD 2.x (v-prediction) models share one code path.

A schedule is also the step rule that sampling, inversion and null-text call: `step`, `inverse_step`,
`levels` and `step_between` (the same four on p2p_real/flow_schedule.py's `FlowSchedule` for
rectified-flow models), so that no loop asks which family it runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler

PREDICTION_TYPES = ("epsilon", "v_prediction")


@dataclass(frozen=True)
class Schedule:
    """Cumulative alphas and the sampling timesteps (descending: noisy first)."""

    alphas_cumprod: torch.Tensor  # (num_train_timesteps,) float32, on the CPU
    timesteps: torch.Tensor  # (num_steps,) int64, descending, e.g. 981, 961, ..., 1
    final_alpha_cumprod: float  # alpha_bar used for the step below t=0
    prediction_type: str
    num_train_timesteps: int

    @classmethod
    def from_scheduler_config(cls, config: dict, num_steps: int) -> "Schedule":
        # diffusers computes the betas and the timestep spacing; we only read them off.
        scheduler = DDIMScheduler.from_config(config)
        if scheduler.config.prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"prediction type {scheduler.config.prediction_type!r} is not supported; "
                f"expected one of {PREDICTION_TYPES}"
            )
        if num_steps < 1 or num_steps > scheduler.config.num_train_timesteps:
            raise ValueError(f"num_steps must be between 1 and {scheduler.config.num_train_timesteps}, got {num_steps}")
        scheduler.set_timesteps(num_steps)
        return cls(
            alphas_cumprod=scheduler.alphas_cumprod.float().cpu(),
            timesteps=scheduler.timesteps.long().cpu(),
            final_alpha_cumprod=float(scheduler.final_alpha_cumprod),
            prediction_type=scheduler.config.prediction_type,
            num_train_timesteps=scheduler.config.num_train_timesteps,
        )

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    @property
    def step_size(self) -> int:
        return self.num_train_timesteps // self.num_steps

    def alpha_bar(self, timestep: int) -> float:
        """alpha_bar(t); below 0 it is the final alpha, as in DDIM's last step."""
        return float(self.alphas_cumprod[timestep]) if timestep >= 0 else self.final_alpha_cumprod

    # The step rule as the loops call it (FlowSchedule has the same four).
    def step(self, model_output, timestep: int, latents):
        return ddim_step(self, model_output, timestep, latents)

    def inverse_step(self, model_output, timestep: int, latents):
        return ddim_inverse_step(self, model_output, timestep, latents)

    def levels(self, timestep: int) -> tuple[float, float]:
        """The step's two noise levels (alpha_bar(t), alpha_bar(t - T/n)), for `step_between`."""
        return step_alpha_bars(self, timestep)

    def step_between(self, model_output, latents, level, next_level):
        return ddim_step_between(self, model_output, latents, level, next_level)

    def record(self) -> dict:
        """What an artifact keeps of the schedule it was made with."""
        return {"kind": "ddim", "timesteps": self.timesteps.tolist()}


def split_prediction(schedule: Schedule, model_output, latents, alpha_bar: float):
    """Return (x0, epsilon) implied by the model's output at a noise level alpha_bar."""
    sqrt_alpha, sqrt_one_minus = alpha_bar**0.5, (1 - alpha_bar) ** 0.5
    if schedule.prediction_type == "epsilon":
        epsilon = model_output
        original = (latents - sqrt_one_minus * epsilon) / sqrt_alpha
    else:  # v = sqrt(a) eps - sqrt(1-a) x0  (Salimans & Ho 2022)
        original = sqrt_alpha * latents - sqrt_one_minus * model_output
        epsilon = sqrt_alpha * model_output + sqrt_one_minus * latents
    return original, epsilon


def ddim_step(schedule: Schedule, model_output, timestep: int, latents):
    """One denoising step from t to t - T/n: x_{t-1} = sqrt(a') x0 + sqrt(1-a') eps."""
    return ddim_step_between(schedule, model_output, latents, *step_alpha_bars(schedule, timestep))


def step_alpha_bars(schedule: Schedule, timestep: int) -> tuple[float, float]:
    """(alpha_bar(t), alpha_bar(t - T/n)): the two noise levels of one denoising step."""
    return schedule.alpha_bar(timestep), schedule.alpha_bar(timestep - schedule.step_size)


def ddim_step_between(schedule: Schedule, model_output, latents, alpha_bar, alpha_bar_prev):
    """`ddim_step` with its noise levels given, as numbers or as tensors (which a CUDA graph replays
    with new values written in place)."""
    original, epsilon = split_prediction(schedule, model_output, latents, alpha_bar)
    return alpha_bar_prev**0.5 * original + (1 - alpha_bar_prev) ** 0.5 * epsilon


def ddim_inverse_step(schedule: Schedule, model_output, timestep: int, latents):
    """One inversion step from t - T/n up to t, the model having been evaluated at t.

    This is the papers' `next_step` and diffusers' `DDIMInverseScheduler.step`: the output, read
    at the *lower* noise level, gives x0 and eps, which are then re-noised to level t.
    """
    current = min(timestep - schedule.step_size, schedule.num_train_timesteps - 1)
    alpha_bar = schedule.alpha_bar(current)
    alpha_bar_next = schedule.alpha_bar(timestep)
    original, epsilon = split_prediction(schedule, model_output, latents, alpha_bar)
    return alpha_bar_next**0.5 * original + (1 - alpha_bar_next) ** 0.5 * epsilon
