"""`with controlled(model, plan) as denoise:` runs the model's denoiser under a Prompt-to-Prompt plan.

The model knows no Prompt-to-Prompt: its runner (p2p_real/graphs.py) runs the UNet under any
attention processors for a block, and this installs editing's, with a fresh `EditState`.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from ..models import Model
from ..sampling import Denoise
from .control import control_of
from .plan import EditPlan
from .state import EditState


@dataclass
class ControlledDenoise:
    """The `denoise` of a `controlled` block, with the plan it runs and its state."""

    denoise: Denoise
    plan: EditPlan
    state: EditState

    def __call__(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        return self.denoise(latents, timestep, embeddings)


@contextmanager
def controlled(model: Model, plan: EditPlan) -> Iterator[ControlledDenoise]:
    """Installs the editing processors with a fresh `EditState` (`denoise.state`), yields the `denoise`
    to sample with (replayed from CUDA graphs captured inside this block when graphs are on: a capture
    bakes in the processors, so it never outlives the block), and restores the previous processors,
    even on error. After a clean exit it checks that the plan reached some attention layer: the
    reference code's silent failure was an edit that edited nothing."""
    processors_of = control_of(model).processors  # the family's (control.py); refused first if it has none
    plan = plan.to(model.device)
    state = EditState(model.device)
    processors = processors_of(model, plan, state)
    with model.runner.processors(processors) as denoise:
        yield ControlledDenoise(denoise, plan, state)
    if state.layers_seen == 0:
        raise RuntimeError("no attention layer reached the edit; it would equal plain generation")
