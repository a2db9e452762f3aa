"""Prompt-to-Prompt's attention edits (Hertz et al. 2023, sec. 3.2) as pure functions.

Cross-attention maps are (rows, heads, queries, keys) probabilities; the source's maps are `base`
(heads, queries, keys) and the targets' own maps `targets` (N, heads, queries, keys). Per-target
settings are tensors with a leading N, so one batch can hold a word swap, a refinement and a
re-weighting side by side.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def replace(base: torch.Tensor, token_maps: torch.Tensor) -> torch.Tensor:
    """Word swap: target token n attends where the source tokens w mapped to it attended,
    sum_w base[..., w] M[w, n], as the reference's einsum('hpw,bwn->bhpn'). token_maps: (N, keys, keys)."""
    return torch.einsum("hqw,pwn->phqn", base, token_maps.to(base))


def refine(base: torch.Tensor, targets: torch.Tensor, token_maps: torch.Tensor,
           token_alphas: torch.Tensor) -> torch.Tensor:
    """Refinement: the mapped source maps where a target token is shared with the source (alpha 1),
    the target's own where it is new (alpha 0). With one-hot token maps this is the reference's gather
    base[:, :, mapper]; with every alpha 1 it is `replace`. token_alphas: (N, keys)."""
    alphas = token_alphas.to(base)[:, None, None, :]
    return replace(base, token_maps) * alphas + targets * (1 - alphas)


def reweight(maps: torch.Tensor, equalizer: torch.Tensor) -> torch.Tensor:
    """Re-weighting: scale each key token's column, (N, keys) factors (ones where a word is not re-weighted)."""
    return maps * equalizer.to(maps)[:, None, None, :]


def mix(edited: torch.Tensor, targets: torch.Tensor, step_alphas: torch.Tensor) -> torch.Tensor:
    """The edit inside each token's window, the target's own maps outside: step_alphas (N, keys) of 0/1."""
    alpha = step_alphas.to(edited)[:, None, None, :]
    return edited * alpha + targets * (1 - alpha)


def edit_cross_attention(base, targets, token_maps, token_alphas, equalizer, step_alphas) -> torch.Tensor:
    """Map (swap or refine), re-weight, then mix by this step's window: the reference's chain."""
    return mix(reweight(refine(base, targets, token_maps, token_alphas), equalizer), targets, step_alphas)


def self_replace(own: torch.Tensor, source_query, source_key, target_value, weight: torch.Tensor,
                 scale: float) -> torch.Tensor:
    """Self-attention replacement without explicit probabilities: the targets' output moves by
    `weight` (N,) toward softmax(Q_source K_source^T) V_target, which is fused attention with the
    source's queries and keys over the targets' values. own: (N, heads, queries, d); source_query
    and source_key: (1, heads, queries, d); target_value: (N, heads, queries, d)."""
    count = target_value.shape[0]
    replaced = F.scaled_dot_product_attention(source_query.expand(count, -1, -1, -1),
                                              source_key.expand(count, -1, -1, -1), target_value, scale=scale)
    return own + weight.to(own.dtype)[:, None, None, None] * (replaced - own)
