"""Cross-attention maps per token as a row of pictures, the way the papers show them."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..images import grid


def token_maps(cross_maps: torch.Tensor, row: int, tokenizer, prompt: str, size: int) -> Image.Image:
    """One heat map per token of `prompt` (start and end tokens left out), from branch `row` of the
    step-summed maps (P, 1, r, r, keys), averaged over heads and layers, each scaled to its own maximum."""
    ids = tokenizer(prompt, verbose=False).input_ids[1:-1]
    maps = cross_maps[row].mean(0)  # (r, r, keys)
    pictures, labels = [], []
    for position, token in enumerate(ids, start=1):
        heat = maps[:, :, position]
        heat = (heat / heat.max().clamp_min(1e-12) * 255).round().to(torch.uint8).cpu().numpy()
        pictures.append(Image.fromarray(np.repeat(heat[:, :, None], 3, axis=2)).resize((size, size),
                                                                                       Image.Resampling.NEAREST))
        labels.append(tokenizer.decode([token]).strip())
    return grid(pictures, labels)
