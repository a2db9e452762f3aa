"""The joint softmax taken apart without leaving the fused kernel, and Shin et al.'s image q/k
replacement: pure functions on (rows, heads, tokens, head_dim) tensors, the image tokens first.

For an image query i the joint softmax over [image | text] keys splits as
    out_i = sum_{j in image} p_ij v_j  +  sum_{t in text} p_it v_t,
    p_it = m_i softmax_t(q_i k_t / sqrt(d)),   m_i = sum_{t in text} p_it  (the row's text mass).
One fused SDPA call whose values are [v_j on image keys, 0 on text keys | 1 on text keys] returns
both the image keys' part (unnormalised, as it sits in the row) and m_i; the text slice itself is
explicit but small (queries x 333 keys, like the UNet's 77-key cross-attention). So the map P2P
edits is the exact image-query x text-key slice of the joint softmax, and the (tokens x tokens)
probabilities are never formed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..rows import join_source, split_source

PAD = 8  # extra channels: the text indicator, then zeros, so the head dim stays a multiple of 8 (flash kernels)


def image_part_and_text_slice(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float,
                              image_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """query, key, value (P, h, n, d), keys [image | text] -> the image keys' part of the output
    (P, h, n, d) and the text slice of the joint softmax (P, h, n, text) in at least float32, for every query.
    The output is `image_part + text_slice @ value[:, :, image_tokens:]` (joint_output)."""
    head_dim = value.shape[-1]
    is_text = torch.zeros(key.shape[2], 1, dtype=value.dtype, device=value.device)
    is_text[image_tokens:] = 1
    # q and k are zero-padded to v's width: q.k is unchanged, and fused kernels that need equal head dims apply
    values = torch.cat([value * (1 - is_text), F.pad(is_text, (0, PAD - 1)).expand(*value.shape[:2], -1, -1)], -1)
    fused = F.scaled_dot_product_attention(F.pad(query, (0, PAD)), F.pad(key, (0, PAD)), values, scale=scale)
    image_part, text_mass = fused[..., :head_dim], fused[..., head_dim : head_dim + 1]  # (P, h, n, d), (P, h, n, 1)
    text_logits = query @ key[:, :, image_tokens:].transpose(-1, -2) * scale  # (P, h, n, text)
    precision = torch.promote_types(query.dtype, torch.float32)  # float32 for half models, float64 stays
    return image_part, text_logits.softmax(-1, dtype=precision) * text_mass.to(precision)


def joint_output(image_part: torch.Tensor, text_slice: torch.Tensor, text_value: torch.Tensor) -> torch.Tensor:
    """(P, h, n, d) + (P, h, n, text) @ (P, h, text, d): the attention output of the (edited) joint rows."""
    return image_part + text_slice.to(text_value.dtype) @ text_value


def replace_image_queries_keys(query: torch.Tensor, key: torch.Tensor, image_tokens: int,
                               weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shin et al. 2025's q_i k_i replacement on the conditional rows (P, h, n, d), the source first:
    each target's image queries and keys move by `weight` (N,) toward the source's (lerp: exactly the
    source's at 1, untouched at 0); text queries and keys and every value stay the target's."""
    def replaced(tensor: torch.Tensor) -> torch.Tensor:
        source, targets = split_source(tensor)
        target_image = targets[:, :, :image_tokens]
        image = torch.lerp(target_image, source[:, :, :image_tokens].expand_as(target_image),
                           weight.to(tensor.dtype)[:, None, None, None])
        return join_source(source, torch.cat([image, targets[:, :, image_tokens:]], dim=2))

    return replaced(query), replaced(key)
