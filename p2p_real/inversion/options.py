"""Options of the inversion methods: frozen dataclasses whose defaults are the papers' values.

They check themselves when made: a bad value is an `OptionError` naming the field.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionError, check_number


@dataclass(frozen=True)
class NullTextOptions:
    """Mokady et al. 2023, sec. 3.2 and the official notebook (null_text_w_ptp.ipynb)."""

    num_inner_steps: int = 10  # Adam iterations per timestep at most
    learning_rate: float = 1e-2  # at step i the rate is learning_rate * (1 - i / 100)
    early_stop_epsilon: float = 1e-5  # stop a timestep's iterations when loss < epsilon + i * slope
    early_stop_slope: float = 2e-5  # (a negative threshold never stops early)
    # Not the paper's: leave a timestep's loop as soon as every photo of the batch has stopped. That
    # reads one boolean from the GPU per inner step; False never syncs (stopped photos are frozen by
    # the masked update, so the results are the same) and suits CUDA-graph capture of the loop.
    stop_batch_early: bool = True
    # Not the paper's either, and without effect on the result: the loss is multiplied by this before
    # the backward pass and Adam's epsilon (1e-8) with it, which leaves Adam's steps exactly as they
    # were (a power of two scales exactly). It lifts a float16 UNet's gradients, about 1e-6 at the
    # output, out of float16's subnormal range, where they lose their precision.
    loss_scale: float = 2.0**12

    def __post_init__(self) -> None:
        if (not isinstance(self.num_inner_steps, int) or isinstance(self.num_inner_steps, bool)
                or self.num_inner_steps < 0):
            raise OptionError("num_inner_steps", f"expected a whole number of Adam steps, 0 or more, "
                                                 f"got {self.num_inner_steps!r}")
        check_number("learning_rate", self.learning_rate, 0, above_low=True)
        check_number("early_stop_epsilon", self.early_stop_epsilon)
        check_number("early_stop_slope", self.early_stop_slope)
        check_number("loss_scale", self.loss_scale, 0, above_low=True)
        if not isinstance(self.stop_batch_early, bool):
            raise OptionError("stop_batch_early", f"expected True or False, got {self.stop_batch_early!r}")
