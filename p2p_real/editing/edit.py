"""Edit an inverted photo by changing its caption: build the controller, run both branches, decode."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..artifacts import Inversion, check_model
from ..errors import PromptError
from ..images import to_uint8
from ..models import Model
from .alignment import equalizer, refinement_mapper, replacement_mapper, token_positions
from .controllers import EditController
from .local_blend import LocalBlend
from .options import EDIT_KINDS, EditOptions
from .sampler import edit_sample
from .schedules import cross_replace_alphas, self_replace_range


@dataclass
class EditResult:
    source: torch.Tensor  # (H, W, 3) uint8: the photo
    reconstruction: torch.Tensor  # (H, W, 3) uint8: the source branch of this run
    edited: torch.Tensor  # (H, W, 3) uint8
    cross_maps: torch.Tensor  # (P, layers*heads, r, r, keys): attention summed over steps
    mask: torch.Tensor | None  # (1, h, w): LocalBlend's last mask for the target, if any
    kind: str


def attention_resolutions(model: Model) -> tuple[int, int]:
    """(store resolution, largest self-replaced query count), scaled from SD v1 at 64x64 latents:
    maps come from the coarsest cross-attention level (16x16 there) and self-attention is
    replaced in layers of at most (latent/2)^2 queries (32x32 there)."""
    latent = model.unet.config.sample_size
    levels = [index for index, kind in enumerate(model.unet.config.down_block_types) if "CrossAttn" in kind]
    return latent // 2 ** max(levels), (latent // 2) ** 2


def resolve_kind(source: str, target: str, options: EditOptions) -> str:
    if options.kind not in EDIT_KINDS:
        raise PromptError(f"unknown edit kind {options.kind!r}; choose one of {', '.join(EDIT_KINDS)}")
    if options.kind != "auto":
        return options.kind
    if source == target:
        return "reweight"
    return "replace" if len(source.split(" ")) == len(target.split(" ")) else "refine"


def build_controller(model: Model, source: str, target: str, num_steps: int, options: EditOptions) -> tuple[EditController, str]:
    kind = resolve_kind(source, target, options)
    length = model.max_tokens
    model.token_ids([source, target])  # a prompt that is too long fails here, by name
    resolution, self_max_queries = attention_resolutions(model)
    controller = EditController(
        resolution=resolution,
        cross_alphas=cross_replace_alphas(model.tokenizer, target, num_steps, options.cross_replace_steps, length),
        self_steps=self_replace_range(num_steps, options.self_replace_steps),
        self_max_queries=self_max_queries,
    )
    if kind == "replace":
        controller.replace_mappers = replacement_mapper(model.tokenizer, source, target, length)[None]
    elif kind == "refine":
        indices, alphas = refinement_mapper(model.tokenizer, source, target, length)
        controller.refine_indices, controller.refine_alphas = indices[None], alphas[None]
    elif source != target:
        raise PromptError(f"a re-weight edit keeps the prompt: {target!r} differs from {source!r}; use --kind auto")
    if options.reweights:
        controller.equalizer = equalizer(model.tokenizer, target, options.reweights, length)[None]
    elif kind == "reweight":
        raise PromptError("a re-weight edit needs words to re-weight, e.g. --reweight fluffy=2")
    return controller, kind


def build_blend(model: Model, source: str, target: str, num_steps: int, options: EditOptions) -> LocalBlend | None:
    if options.blend_words is None:
        return None
    weights = torch.zeros(2, model.max_tokens)
    for row, (prompt, word) in enumerate(zip((source, target), options.blend_words)):
        weights[row, token_positions(model.tokenizer, prompt, word)] = 1
    return LocalBlend(weights, start_step=int(options.blend_start * num_steps), threshold=options.blend_threshold)


def edit(model: Model, inversion: Inversion, target: str, options: EditOptions = EditOptions(), progress: bool = False) -> EditResult:
    """Edit `inversion`'s photo so that it shows `target` instead of its caption."""
    check_model(inversion, model, inversion.source_path or "the inversion")
    source = inversion.prompt
    controller, kind = build_controller(model, source, target, inversion.num_steps, options)
    blend = build_blend(model, source, target, inversion.num_steps, options)
    schedule = model.schedule(inversion.num_steps)
    latents = edit_sample(
        model.unet, model.controlled_denoise(), inversion.noise_latents.to(model.device),
        inversion.null_text_embeddings.to(model.device), model.embed([source, target]), schedule,
        inversion.guidance_scale, controller, blend,
        latent_offsets=None if inversion.latent_offsets is None else inversion.latent_offsets.to(model.device),
        disable=not progress,
    )
    images = to_uint8(model.decode(latents))
    return EditResult(
        source=inversion.image, reconstruction=images[0], edited=images[1], cross_maps=controller.cross_maps,
        mask=None if blend is None or blend.last_mask is None else blend.last_mask[1], kind=kind,
    )
