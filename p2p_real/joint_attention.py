"""SD3's joint-attention processor: diffusers' JointAttnProcessor2_0 (same signature, same math) with
the attention itself behind one overridable method, `attend`, as FusedAttention has for the UNet.

SD3's MM-DiT blocks run one softmax over the concatenated sequence [image | text]: image tokens
first, then the 333 text tokens (77 CLIP + 256 T5). Three kinds of `Attention` call it:
- a block's joint `attn`: image and text streams, with RMS qk-norm on SD3.5 (`norm_q`, `norm_k`,
  `norm_added_q`, `norm_added_k`);
- the last block's `attn` (`context_pre_only`): no `to_add_out`, the text outputs are returned
  unprojected and dropped by the block, exactly as diffusers does;
- SD3.5-medium's image-only `attn2` of blocks 0-12 (dual attention, MMDiT-X): called with
  `encoder_hidden_states=None`, it is plain self-attention over the image tokens.

`attend(query, key, value, scale, image_tokens)` sees the joint (B, heads, tokens, head_dim) tensors,
the image tokens first, and returns the attention output of the same layout; `image_tokens` equals
the token count for `attn2`. The default is fused SDPA. A subclass (Prompt-to-Prompt's
JointEditingAttention, p2p_real/editing/joint_editing.py) overrides it. Install with
`transformer.set_attn_processor({name: JointAttention() for name in transformer.attn_processors})`;
no library class is patched.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def split_heads(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, n, heads * d) -> (B, heads, n, d)."""
    batch, tokens, channels = tensor.shape
    return tensor.view(batch, tokens, heads, channels // heads).transpose(1, 2)


def normed(norm, tensor: torch.Tensor) -> torch.Tensor:
    return tensor if norm is None else norm(tensor)


class JointAttention:
    """JointAttnProcessor2_0 with the attention in `attend`."""

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, *args, **kwargs):
        if attention_mask is not None:  # SD3 never passes one; refuse rather than ignore it
            raise NotImplementedError(f"{type(self).__name__} takes no attention mask")
        batch, image_tokens = hidden_states.shape[:2]
        heads = attn.heads
        query = normed(attn.norm_q, split_heads(attn.to_q(hidden_states), heads))  # (B, h, i, d)
        key = normed(attn.norm_k, split_heads(attn.to_k(hidden_states), heads))
        value = split_heads(attn.to_v(hidden_states), heads)
        if encoder_hidden_states is not None:  # the text stream, concatenated after the image: [image | text]
            context = encoder_hidden_states
            query = torch.cat([query, normed(attn.norm_added_q, split_heads(attn.add_q_proj(context), heads))], dim=2)
            key = torch.cat([key, normed(attn.norm_added_k, split_heads(attn.add_k_proj(context), heads))], dim=2)
            value = torch.cat([value, split_heads(attn.add_v_proj(context), heads)], dim=2)
        hidden_states = self.attend(query, key, value, attn.scale, image_tokens)  # (B, h, i + t, d)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, query.shape[1] * query.shape[3])
        hidden_states = hidden_states.to(query.dtype)
        image, text = hidden_states[:, :image_tokens], hidden_states[:, image_tokens:]
        image = attn.to_out[1](attn.to_out[0](image))  # projection, dropout
        if encoder_hidden_states is None:
            return image
        if not attn.context_pre_only:
            text = attn.to_add_out(text)
        return image, text

    def attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float,
               image_tokens: int) -> torch.Tensor:
        """(B, h, n, d) each, the first `image_tokens` of n the image's -> (B, h, n, d)."""
        return F.scaled_dot_product_attention(query, key, value, scale=scale)
