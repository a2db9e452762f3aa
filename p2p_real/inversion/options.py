"""Options of the inversion methods: frozen dataclasses whose defaults are the papers' values."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NullTextOptions:
    """Mokady et al. 2023, sec. 3.2 and the official notebook (null_text_w_ptp.ipynb)."""

    num_inner_steps: int = 10  # Adam iterations per timestep at most
    learning_rate: float = 1e-2  # at step i the rate is learning_rate * (1 - i / 100)
    early_stop_epsilon: float = 1e-5  # stop a timestep's iterations when loss < epsilon + i * slope
    early_stop_slope: float = 2e-5
    # Not the paper's: leave a timestep's loop as soon as every photo of the batch has stopped. That
    # reads one boolean from the GPU per inner step; False never syncs (stopped photos are frozen by
    # the masked update, so the results are the same) and suits CUDA-graph capture of the loop.
    stop_batch_early: bool = True
    # Not the paper's either, and without effect on the result: the loss is multiplied by this before
    # the backward pass and Adam's epsilon (1e-8) with it, which leaves Adam's steps exactly as they
    # were (a power of two scales exactly). It lifts a float16 UNet's gradients, about 1e-6 at the
    # output, out of float16's subnormal range, where they lose their precision.
    loss_scale: float = 2.0**12
