"""EditPlan: what an edit does at each step, as frozen per-step and per-token tensors.

Built once from the prompts and `EditOptions` (the parsing of words, windows and alignments is all
here); read, never written, by the attention processor and LocalBlend. The one mutable part of an
edit is `EditState`. Every tensor has one row per target, so one sampling pass edits many targets.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Sequence

import torch
import torch.nn.functional as F

from ..errors import PromptError
from .alignment import equalizer, refinement_mapper, replacement_mapper, token_positions
from .options import EditOptions
from .schedules import cross_replace_alphas, self_replace_range


@dataclass(frozen=True)
class BlendPlan:
    """LocalBlend's settings per target (Hertz et al. 2023, sec. 3.3), and the users' painted masks
    (painted_mask.py), which confine an edit alone or together with the blend words."""

    word_weights: torch.Tensor  # (N, 2, keys): 1 at the blend words' tokens in the source and in the target
    thresholds: torch.Tensor  # (N,)
    start_steps: tuple[int, ...]  # blend target n from step start_steps[n] on (int(0.2 T) in the reference)
    enabled: tuple[bool, ...]  # targets with blend words
    painted_masks: torch.Tensor | None = None  # (N, 1, h, w): 1 where target n may change, ones without a mask
    painted: tuple[bool, ...] = ()  # targets with a painted mask; () when none has one

    @property
    def confined(self) -> tuple[bool, ...]:
        """Targets whose edit is kept to a region, by blend words or a painted mask; the others are left alone."""
        painted = self.painted or (False,) * len(self.enabled)
        return tuple(words or paint for words, paint in zip(self.enabled, painted))

    def to(self, device) -> "BlendPlan":
        painted_masks = None if self.painted_masks is None else self.painted_masks.to(device)
        return replace(self, word_weights=self.word_weights.to(device), thresholds=self.thresholds.to(device),
                       painted_masks=painted_masks)


@dataclass(frozen=True)
class EditPlan:
    kinds: tuple[str, ...]  # per target: replace, refine or reweight
    cross_alphas: torch.Tensor  # (T + 1, N, keys): 1 where a target token takes the source's edited map
    token_maps: torch.Tensor  # (N, keys, keys): target token n reads sum_w source[w] M[w, n]
    token_alphas: torch.Tensor  # (N, keys): 1 where the mapped source map replaces the target's own
    equalizer: torch.Tensor  # (N, keys): re-weighting factors, ones elsewhere
    self_weights: torch.Tensor | None  # (T, N): 1 inside each target's self-replacement window; None if never
    store_resolution: int  # cross-attention maps of layers with resolution^2 queries are summed (16 for SD v1)
    self_max_queries: int  # self-attention is replaced in layers with at most this many queries
    blend: BlendPlan | None = None

    def to(self, device) -> "EditPlan":
        def moved(value):
            return value.to(device) if isinstance(value, torch.Tensor) else value

        blend = None if self.blend is None else self.blend.to(device)
        return replace(self, **{f.name: moved(getattr(self, f.name)) for f in fields(self) if f.name != "blend"},
                       blend=blend)


def attention_resolutions(unet_config) -> tuple[int, int]:
    """(store resolution, largest self-replaced query count), scaled from SD v1 at 64x64 latents:
    maps come from the coarsest cross-attention level (16x16 there) and self-attention is
    replaced in layers of at most (latent/2)^2 queries (32x32 there)."""
    latent = unet_config.sample_size
    levels = [index for index, kind in enumerate(unet_config.down_block_types) if "CrossAttn" in kind]
    return latent // 2 ** max(levels), (latent // 2) ** 2


def resolve_kind(source: str, target: str, options: EditOptions) -> str:
    if options.kind != "auto":  # EditOptions refused any other kind when it was made
        return options.kind
    if source == target:
        return "reweight"
    return "replace" if len(source.split(" ")) == len(target.split(" ")) else "refine"


def token_mapping(tokenizer, source: str, target: str, kind: str, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(keys, keys) token map and (keys,) alphas of one target, for `refine` in attention_edits."""
    if kind == "replace":
        return replacement_mapper(tokenizer, source, target, length), torch.ones(length)
    if kind == "refine":
        indices, alphas = refinement_mapper(tokenizer, source, target, length)
        return F.one_hot(indices, length).T.float(), alphas  # M[w, n] = 1 where target n reads source w
    if source != target:
        raise PromptError(f"a re-weight edit keeps the prompt: {target!r} differs from {source!r}; use kind auto")
    return torch.eye(length), torch.ones(length)


def build_plan(model, source: str, targets: list[str], options: list[EditOptions], num_steps: int,
               regions: Sequence[torch.Tensor | None] | None = None) -> EditPlan:
    """The plan for editing `source` into each of `targets`, with one `EditOptions` per target, and
    per target a painted region on the latent grid (h, w) or None (painted_mask.latent_regions)."""
    tokenizer, length = model.tokenizer, model.max_tokens
    model.token_ids([source, *targets])  # a prompt that is too long fails here, by name
    kinds = tuple(resolve_kind(source, target, option) for target, option in zip(targets, options))
    mappings = [token_mapping(tokenizer, source, target, kind, length) for target, kind in zip(targets, kinds)]
    for kind, option in zip(kinds, options):
        if kind == "reweight" and not option.reweights:
            raise PromptError("a re-weight edit needs words to re-weight, e.g. reweights={'fluffy': 2.0}")
    self_windows = [self_replace_range(num_steps, option.self_replace_steps) for option in options]
    self_weights = torch.tensor([[float(step in window) for window in self_windows] for step in range(num_steps)])
    store_resolution, self_max_queries = attention_resolutions(model.unet.config)
    return EditPlan(
        kinds=kinds,
        cross_alphas=torch.stack([cross_replace_alphas(tokenizer, target, num_steps, option.cross_replace_steps, length)
                                  for target, option in zip(targets, options)], dim=1),
        token_maps=torch.stack([token_map for token_map, _ in mappings]),
        token_alphas=torch.stack([alphas for _, alphas in mappings]),
        equalizer=torch.stack([equalizer(tokenizer, target, option.reweights, length)
                               if option.reweights else torch.ones(length)
                               for target, option in zip(targets, options)]),
        self_weights=self_weights if any(len(window) for window in self_windows) else None,
        store_resolution=store_resolution,
        self_max_queries=self_max_queries,
        blend=build_blend(tokenizer, source, targets, options, num_steps, length, regions or [None] * len(targets)),
    )


def build_blend(tokenizer, source: str, targets: list[str], options: list[EditOptions], num_steps: int, length: int,
                regions: Sequence[torch.Tensor | None]) -> BlendPlan | None:
    if len(regions) != len(targets):
        raise ValueError(f"{len(targets)} targets but {len(regions)} painted regions; give one (or None) per target")
    if all(option.blend_words is None for option in options) and all(region is None for region in regions):
        return None
    weights = torch.zeros(len(targets), 2, length)
    for row, (target, option) in enumerate(zip(targets, options)):
        if option.blend_words is not None:
            for column, (prompt, word) in enumerate(zip((source, target), option.blend_words)):
                weights[row, column, token_positions(tokenizer, prompt, word)] = 1
    return BlendPlan(
        word_weights=weights,
        thresholds=torch.tensor([option.blend_threshold for option in options]),
        start_steps=tuple(int(option.blend_start * num_steps) for option in options),
        enabled=tuple(option.blend_words is not None for option in options),
        **painted_regions(regions),
    )


def painted_regions(regions: Sequence[torch.Tensor | None]) -> dict:
    """BlendPlan's painted_masks (N, 1, h, w) and painted flags; nothing when no target has a mask."""
    painted = [region for region in regions if region is not None]
    if not painted:
        return {}
    if any(region.shape != painted[0].shape for region in painted):
        raise ValueError(f"painted regions of different latent sizes: "
                         f"{sorted({tuple(region.shape) for region in painted})}")
    everywhere = torch.ones_like(painted[0])
    return {"painted_masks": torch.stack([everywhere if region is None else region for region in regions])[:, None],
            "painted": tuple(region is not None for region in regions)}
