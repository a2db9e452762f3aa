"""Route a UNet's attention through a Prompt-to-Prompt controller for the length of an edit.

The processor (`p2p_real.attention.ControlledAttention`) is installed per edit with
`unet.set_attn_processor` and the previous ones are restored afterwards; no library class is patched.
"""
from __future__ import annotations

from contextlib import contextmanager

from ..attention import ControlledAttention


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
