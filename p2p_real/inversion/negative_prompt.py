"""Negative-prompt inversion (Miyake et al. 2023): use the source prompt's own embedding as the
unconditional one at every step, with no optimisation. Guided sampling then collapses to the
conditional prediction, which retraces DDIM inversion up to its first-order error."""
from __future__ import annotations

import torch


def negative_prompt_embeddings(conditional: torch.Tensor, num_steps: int) -> torch.Tensor:
    """(B, L, D) prompt embeddings -> (steps, B, L, D) per-step 'null' embeddings."""
    return conditional[None].expand(num_steps, -1, -1, -1)
