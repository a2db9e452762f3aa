"""The UNet's attention processor: diffusers' fused SDPA attention, reading the text embedding in
float32 when a half-precision UNet keeps its text projections in float32.

Each cross-attention's `to_k` and `to_v` stay float32 in a half-precision UNet
(`keep_text_projections_in_fp32`): null-text inversion moves the embedding by Adam steps of about
1e-2 and less, and rounding the embedding itself to bfloat16 (8-bit mantissa) loses 26% of such a
step and 54% of a 5e-3 step, so the optimisation stalls. Rounding the keys and values after the
projection keeps every step.

`attend` is the one method a subclass overrides (Prompt-to-Prompt's processor,
p2p_real/editing/attention.py). Installed with `unet.set_attn_processor`; no library class is patched.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention


class FusedAttention:
    """diffusers' AttnProcessor2_0 for the transformer attention of SD-style UNets, casting the keys
    and values to the queries' dtype (the text projections may be float32)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if (attn.spatial_norm is not None or attn.group_norm is not None or hidden_states.ndim != 3
                or attention_mask is not None):
            raise NotImplementedError(f"{type(self).__name__} supports the transformer attention of SD-style UNets")
        is_cross = encoder_hidden_states is not None
        residual = hidden_states
        batch = hidden_states.shape[0]
        context = hidden_states if not is_cross else (
            attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states
        )
        context = context.to(attn.to_k.weight.dtype)
        query = attn.to_q(hidden_states)
        key, value = attn.to_k(context).to(query.dtype), attn.to_v(context).to(query.dtype)
        head_dim = key.shape[-1] // attn.heads
        # (B, h, n, d)
        query, key, value = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))
        hidden_states = self.attend(query, key, value, attn.scale, is_cross)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim)  # (B, q, h*d)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def attend(self, query, key, value, scale: float, is_cross: bool) -> torch.Tensor:
        """(B, h, q, d), (B, h, k, d), (B, h, k, d) -> (B, h, q, d)."""
        return F.scaled_dot_product_attention(query, key, value, scale=scale)


def keep_text_projections_in_fp32(unet) -> None:
    """Cast each cross-attention's key and value projections of `unet` back to float32: a few MB,
    and cheap to run (77 tokens). Needs `FusedAttention` (or a subclass) as the processor, which casts."""
    for module in unet.modules():
        if isinstance(module, Attention) and module.is_cross_attention:
            module.to_k.float()
            module.to_v.float()
