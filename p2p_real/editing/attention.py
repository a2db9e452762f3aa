"""One diffusers attention processor that shows attention probabilities to a controller.

Installed per edit with `unet.set_attn_processor` and removed afterwards (`controlled`); no library
class is patched. Layers whose probabilities the controller does not need keep the fused SDPA path.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch.nn.functional as F


class ControlledAttention:
    """Like diffusers' AttnProcessor2_0, but hands softmax(QK^T/sqrt(d)) to `controller` when it asks."""

    def __init__(self, controller, place: str):
        self.controller = controller
        self.place = place  # "down", "mid" or "up"

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if attn.spatial_norm is not None or attn.group_norm is not None or hidden_states.ndim != 3 or attention_mask is not None:
            raise NotImplementedError("ControlledAttention supports the transformer attention of SD-style UNets")
        is_cross = encoder_hidden_states is not None
        residual = hidden_states
        batch, num_queries, _ = hidden_states.shape
        context = hidden_states if not is_cross else (
            attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states
        )
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))  # (B, h, n, d)
        if self.controller.wants(is_cross, self.place, num_queries):
            probabilities = (query @ key.transpose(-1, -2) * attn.scale).softmax(dim=-1)  # (B, h, q, k)
            probabilities = self.controller(probabilities, is_cross, self.place, num_queries)
            hidden_states = probabilities.to(value.dtype) @ value
        else:
            hidden_states = F.scaled_dot_product_attention(query, key, value, scale=attn.scale)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim)  # (B, q, h*d)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def place_of(layer_name: str) -> str:
    """'down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor' -> 'down'."""
    return layer_name.split("_")[0].split(".")[0]


@contextmanager
def controlled(unet, controller):
    """Route every attention layer of `unet` through `controller`; restore the old processors after."""
    previous = dict(unet.attn_processors)  # set_attn_processor consumes the dict it is given
    unet.set_attn_processor({name: ControlledAttention(controller, place_of(name)) for name in previous})
    try:
        yield controller
    finally:
        unet.set_attn_processor(previous)
