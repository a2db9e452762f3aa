"""The UNet's attention processor: diffusers' fused SDPA attention, with two additions.

- It can hand the attention probabilities to a controller (Prompt-to-Prompt's seam); layers whose
  probabilities the controller does not want keep the fused SDPA path.
- It reads the text embedding in float32 when a half-precision UNet keeps its text projections
  (each cross-attention's `to_k` and `to_v`) in float32 (`keep_text_projections_in_fp32`).
  Null-text inversion moves the embedding by Adam steps of about 1e-2 and less; rounding the
  embedding itself to bfloat16 (8-bit mantissa) loses 26% of such a step and 54% of a 5e-3 step,
  so the optimisation stalls. Rounding the keys and values after the projection keeps every step.

Installed with `unet.set_attn_processor`; no library class is patched.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention


class ControlledAttention:
    """Like diffusers' AttnProcessor2_0, but hands softmax(QK^T/sqrt(d)) to `controller` when it asks,
    and casts the keys and values to the queries' dtype (the text projections may be float32)."""

    def __init__(self, controller=None, place: str = ""):
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
        context = context.to(attn.to_k.weight.dtype)
        query = attn.to_q(hidden_states)
        key, value = attn.to_k(context).to(query.dtype), attn.to_v(context).to(query.dtype)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))  # (B, h, n, d)
        if self.controller is not None and self.controller.wants(is_cross, self.place, num_queries):
            probabilities = (query @ key.transpose(-1, -2) * attn.scale).softmax(dim=-1)  # (B, h, q, k)
            probabilities = self.controller(probabilities, is_cross, self.place, num_queries)
            hidden_states = probabilities.to(value.dtype) @ value
        else:
            hidden_states = F.scaled_dot_product_attention(query, key, value, scale=attn.scale)
            weight = None if self.controller is None or is_cross else self.controller.self_replacement(self.place, num_queries)
            if weight is not None:
                hidden_states = self.replace_self_attention(hidden_states, query, key, value, weight, attn.scale)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim)  # (B, q, h*d)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


    @staticmethod
    def replace_self_attention(hidden_states, query, key, value, weight, scale):
        """Rows [unconditional x P, source, targets x (P - 1)]: the targets' output moves by `weight`
        toward softmax(Q_source K_source^T) V_target, fused attention with the source's probabilities."""
        prompts = hidden_states.shape[0] // 2
        source, targets = slice(prompts, prompts + 1), slice(prompts + 1, None)
        shape = value[targets].shape
        replaced = F.scaled_dot_product_attention(query[source].expand(shape[0], -1, -1, -1),
                                                  key[source].expand(shape[0], -1, -1, -1), value[targets], scale=scale)
        own = hidden_states[targets]
        return torch.cat([hidden_states[: prompts + 1], own + weight.to(own.dtype) * (replaced - own)])


def keep_text_projections_in_fp32(unet) -> None:
    """Cast each cross-attention's key and value projections of `unet` back to float32: a few MB,
    and cheap to run (77 tokens). Needs `ControlledAttention` as the processor, which casts."""
    for module in unet.modules():
        if isinstance(module, Attention) and module.is_cross_attention:
            module.to_k.float()
            module.to_v.float()
