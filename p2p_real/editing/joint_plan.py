"""The `EditPlan` of a joint-attention transformer whose text keys are several tokenizers' sequences
side by side: SD3's 333 keys are 77 CLIP positions (CLIP-L and CLIP-G share them: one BPE) and then
256 T5 positions (SentencePiece, no start token).

Each part of every per-token tensor is built by the UNet's own functions (alignment.py,
schedules.py, plan.py) on that part's tokenizer, so word swap, refine's Needleman-Wunsch alignment,
re-weighting, per-word windows and LocalBlend's words are aligned per tokenizer; the parts are then
put side by side: token maps block-diagonal (a CLIP token never reads a T5 token), alphas, equalizer,
windows and blend word weights concatenated along the keys. A part without a tokenizer (an SD3 folder
saved without T5, whose rows are zeros) is left alone: identity map, ones, the default window.

Interface: `build_joint_plan(sd3_text_parts(text.tokenizer, text.tokenizer_3), source, targets,
options, num_steps, regions)` -> `EditPlan` with keys = 333, read by JointEditingAttention
(joint_editing.py); `joint_attention_plan(model, ...)` is the same with build_plan's arguments, for
editing/control.py's table (it reads `model.text.tokenizer` and `model.text.tokenizer_3`). The
plan's `store_resolution` and `self_max_queries` are the UNet's and unused here (0): which blocks keep
maps is `JointLayers`' business (joint_editing.py).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch

from ..errors import PromptError
from .alignment import equalizer
from .options import EditOptions
from .plan import EditPlan, build_blend, resolve_kind, token_mapping
from .schedules import cross_replace_alphas, self_replace_range

CLIP_TOKENS, T5_TOKENS = 77, 256  # SD3's text keys: CLIP's context length, the pipeline's max_sequence_length


@dataclass(frozen=True)
class TextPart:
    """One tokenizer's run of the text keys: `length` positions, in the order the model concatenates them."""

    tokenizer: object | None  # None: the part's rows carry no words (zeros), it is never edited
    length: int
    name: str


def sd3_text_parts(clip_tokenizer, t5_tokenizer, t5_length: int = T5_TOKENS) -> tuple[TextPart, TextPart]:
    return TextPart(clip_tokenizer, CLIP_TOKENS, "CLIP"), TextPart(t5_tokenizer, t5_length, "T5")


def check_lengths(parts: Sequence[TextPart], prompts: Sequence[str]) -> None:
    """A prompt longer than a part would be cut by the encoder, and its words would point past the keys."""
    for part in parts:
        if part.tokenizer is None:
            continue
        for prompt in prompts:
            count = len(part.tokenizer(prompt, verbose=False).input_ids)
            if count > part.length:
                raise PromptError(f"the prompt {prompt!r} is {count} {part.name} tokens, over the {part.length} the "
                                  f"model reads; shorten it")


def part_windows(part: TextPart, target: str, windows, num_steps: int) -> torch.Tensor:
    """(T + 1, length): cross_replace_alphas on the part's tokenizer; a part without one takes the default."""
    if part.tokenizer is None:
        default = windows.get("default_", (0.0, 1.0)) if isinstance(windows, dict) else windows
        return cross_replace_alphas(None, target, num_steps, default, part.length)
    return cross_replace_alphas(part.tokenizer, target, num_steps, windows, part.length)


def part_edit(part: TextPart, source: str, target: str, kind: str, option: EditOptions, num_steps: int):
    """(token map (L, L), alphas (L,), equalizer (L,), windows (T + 1, L)) of one target on one part."""
    windows = part_windows(part, target, option.cross_replace_steps, num_steps)
    if part.tokenizer is None:
        return torch.eye(part.length), torch.ones(part.length), torch.ones(part.length), windows
    token_map, alphas = token_mapping(part.tokenizer, source, target, kind, part.length)
    scale = equalizer(part.tokenizer, target, option.reweights, part.length) if option.reweights \
        else torch.ones(part.length)
    return token_map, alphas, scale, windows


def build_joint_plan(parts: Sequence[TextPart], source: str, targets: list[str], options: list[EditOptions],
                     num_steps: int, regions: Sequence[torch.Tensor | None] | None = None) -> EditPlan:
    """The plan for editing `source` into each of `targets` (one `EditOptions` each) on a model whose text
    keys are `parts` side by side; `regions` as build_plan's (painted regions on the latent grid)."""
    check_lengths(parts, [source, *targets])
    kinds = tuple(resolve_kind(source, target, option) for target, option in zip(targets, options))
    for kind, option in zip(kinds, options):
        if kind == "reweight" and not option.reweights:
            raise PromptError("a re-weight edit needs words to re-weight, e.g. reweights={'fluffy': 2.0}")
    # per target, per part: (token map, alphas, equalizer, windows)
    edits = [[part_edit(part, source, target, kind, option, num_steps) for part in parts]
             for target, kind, option in zip(targets, kinds, options)]
    self_windows = [self_replace_range(num_steps, option.self_replace_steps) for option in options]
    self_weights = torch.tensor([[float(step in window) for window in self_windows] for step in range(num_steps)])
    return EditPlan(
        kinds=kinds,
        cross_alphas=torch.stack([torch.cat([part[3] for part in target], dim=-1) for target in edits], dim=1),
        token_maps=torch.stack([torch.block_diag(*[part[0] for part in target]) for target in edits]),
        token_alphas=torch.stack([torch.cat([part[1] for part in target]) for target in edits]),
        equalizer=torch.stack([torch.cat([part[2] for part in target]) for target in edits]),
        self_weights=self_weights if any(len(window) for window in self_windows) else None,
        store_resolution=0,
        self_max_queries=0,
        blend=joint_blend(parts, source, targets, options, num_steps, regions or [None] * len(targets)),
    )


def joint_attention_plan(model, source: str, targets: list[str], options: list[EditOptions], num_steps: int,
                         regions: Sequence[torch.Tensor | None] | None = None) -> EditPlan:
    """build_plan's signature for an SD3 model: its CLIP-L tokenizer (CLIP-G's positions are the same)
    and its T5 tokenizer (None when the model has no T5)."""
    parts = sd3_text_parts(model.text.tokenizer, model.text.tokenizer_3)
    return build_joint_plan(parts, source, targets, options, num_steps, regions)


def joint_blend(parts: Sequence[TextPart], source: str, targets: list[str], options: list[EditOptions],
                num_steps: int, regions: Sequence[torch.Tensor | None]):
    """build_blend on each part with a tokenizer, the word weights side by side (zeros on a part without)."""
    blends = [None if part.tokenizer is None else
              build_blend(part.tokenizer, source, targets, options, num_steps, part.length, regions) for part in parts]
    present = [blend for blend in blends if blend is not None]
    if not present:
        return None
    weights = [torch.zeros(len(targets), 2, part.length) if blend is None else blend.word_weights
               for part, blend in zip(parts, blends)]
    return replace(present[0], word_weights=torch.cat(weights, dim=-1))
