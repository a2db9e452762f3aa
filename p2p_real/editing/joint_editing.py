"""Prompt-to-Prompt on SD3's joint attention: `JointAttention` whose `attend` applies an `EditPlan`.

Rows are the UNet's (p2p_real/rows.py): [unconditional x P | conditional x P], P = source + targets.
Only the conditional rows are controlled; the unconditional ones run plain fused SDPA.

The cross-attention map. In an MM-DiT block every token attends to [image | text] in one softmax;
the analogue of the UNet's cross-attention map is the image-query x text-key (T2I) slice of that
joint softmax (Shin et al. 2025, arXiv 2508.07519). It is computed exactly without the
(tokens x tokens) probabilities (joint_edits.py): one fused SDPA call gives the image keys' part of
each row and the row's text mass, and the slice itself is queries x 333 keys. Word swap, refine and
re-weight edit the targets' image-query rows of that slice with the UNet's functions
(attention_edits.edit_cross_attention: token maps, refine's alphas, the equalizer, per-word windows
from the plan's cross_alphas), and the output is the target's own image part plus the edited slice
times the target's text values.
Renormalisation: none. The image-image part of each row stays the target's own and the edited slice
is used as it is, as Hertz et al. never renormalise after replace, refine or re-weight. A swapped
slice carries the source's text mass, so a row sums to 1 - m_target + m_source: injecting the
source's T2I block means exactly that. Rescaling the image part to make the row sum to 1 would move
the target's image-image (self-attention) output by a factor that depends on both branches, i.e. leak
the cross edit into self-attention, which P2P controls separately and by its own window; and a
re-weight by 2 could make that factor negative. Text-query rows (I2T, T2T) are never edited
(touching the text stream destabilises, Shin et al.; ConsistEdit).

The self-attention analogue: Shin et al.'s q_i k_i replacement, the targets' image queries and keys
replaced by the source's inside the plan's self window (`self_weights`), in every joint block, the
text queries/keys and all values the target's own. Chosen over replacing the image-image block of
the probabilities because (1) it is the variant that study found to keep the source's layout best
while editing (whole-map replacement shifts the text branch), (2) q and k of image tokens carry the
structure (ConsistEdit), and (3) it runs inside the fused kernel, where an I2I block would need the
(4096 x 4096 per head) probabilities at 1024 px. Note Shin et al. use 20% of the steps
(`self_replace_steps=0.2`); EditOptions' default (0.6) is the UNet's. SD3.5-medium's image-only
`attn2` (blocks 0-12) is left as it comes (fused), as that study leaves it.

Maps for LocalBlend and the results: the edited T2I slices of `JointLayers.map_blocks`, averaged over
heads, summed into `EditState` as (P, heads, rows, columns, 333), so LocalBlend (local_blend.py) and
EditResult read them unchanged. Default blocks: the study's SD3.5-medium choice [7, 9, 8, 5, 10]
(24 blocks) scaled to the model's depth; they were chosen there by measurement on generated images,
and on random weights nothing can be measured: benchmarks/sd3_map_blocks.py is the script that would.
(Their code indexes `transformer.attn_processors`, which on SD3.5-medium interleaves attn2 with attn
for blocks 0-12, so there [7, 9, 8, 5, 10] stores blocks 4 and 5 only; we read the numbers as blocks.)

Cost: fused SDPA everywhere. Blocks that neither edit nor keep maps, the unconditional rows and attn2
run plain SDPA; edited blocks run one fused call with 8 extra channels plus the small T2I slice, at
every step (a CUDA graph replays one path, so steps outside the windows cannot branch on the host;
their windows are 0 there and the edit is the identity).

Interface, for `controlled`:
    layers = JointLayers.for_transformer(transformer.config)   # or map_blocks=..., edit_blocks=...
    processors = joint_editing_processors(transformer, plan, state, layers)
    # = {name: JointEditingAttention(plan, state, name, layers) for name in transformer.attn_processors}
with `plan` from joint_plan.build_joint_plan and `state` a fresh EditState; `state.begin_step(i)`
before each transformer call, as for the UNet. `joint_attention_processors(model, plan, state)` does
this for a model whose `denoiser` is the transformer (editing/control.py's table), with the default
JointLayers: the scaled study blocks, every block edited, square images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..joint_attention import JointAttention
from ..rows import join_source, split_guidance, split_source, stack_for_guidance
from .attention_edits import edit_cross_attention
from .joint_edits import image_part_and_text_slice, joint_output, replace_image_queries_keys
from .plan import EditPlan
from .state import EditState

SHIN_SD35_MEDIUM_BLOCKS = (7, 9, 8, 5, 10)  # Shin et al. 2025's top-5 T2I map blocks of SD3.5-medium
SHIN_SD35_MEDIUM_DEPTH = 24


def scaled_map_blocks(num_layers: int, blocks=SHIN_SD35_MEDIUM_BLOCKS, depth: int = SHIN_SD35_MEDIUM_DEPTH):
    """The study's blocks at the same relative depths of a model with `num_layers` blocks."""
    return frozenset(min(num_layers - 1, round(block * num_layers / depth)) for block in blocks)


@dataclass(frozen=True)
class JointLayers:
    """Where an edit acts in a joint-attention transformer."""

    map_blocks: frozenset[int]  # blocks whose edited T2I maps are kept (LocalBlend, the results' maps)
    edit_blocks: frozenset[int] | None = None  # blocks whose T2I slice word swap/refine/re-weight edit; None: all
    grid: tuple[int, int] | None = None  # image tokens as (rows, columns); None: a square

    @classmethod
    def for_transformer(cls, config, map_blocks=None, edit_blocks=None, grid=None) -> "JointLayers":
        blocks = scaled_map_blocks(config.num_layers) if map_blocks is None else frozenset(map_blocks)
        outside = sorted(block for block in blocks | frozenset(edit_blocks or ()) if not 0 <= block < config.num_layers)
        if outside:
            raise ValueError(f"blocks {outside} are outside the transformer's {config.num_layers} blocks")
        return cls(blocks, None if edit_blocks is None else frozenset(edit_blocks), grid)

    def grid_of(self, image_tokens: int) -> tuple[int, int]:
        side = math.isqrt(image_tokens)
        grid = self.grid or (side, side)
        if grid[0] * grid[1] != image_tokens:
            raise ValueError(f"{image_tokens} image tokens do not fill a {grid[0]} x {grid[1]} grid; "
                             f"give JointLayers the grid (latent size // patch size)")
        return grid


def block_of(layer: str) -> tuple[int, str]:
    """'transformer_blocks.4.attn.processor' -> (4, 'attn'); SD3.5-medium's image-only one is 'attn2'."""
    _, block, attention, *_ = layer.split(".")
    return int(block), attention


class JointEditingAttention(JointAttention):
    """The processor of one attention layer (`layer`, its name in `transformer.attn_processors`) under
    `plan`, reading the step from and adding maps to the edit's shared `state`."""

    def __init__(self, plan: EditPlan, state: EditState, layer: str, layers: JointLayers):
        self.plan, self.state, self.layer, self.layers = plan, state, layer, layers
        block, attention = block_of(layer)
        self.joint = attention == "attn"  # attn2 sees no text
        self.stores = self.joint and block in layers.map_blocks
        self.edits = self.joint and (layers.edit_blocks is None or block in layers.edit_blocks)

    def attend(self, query, key, value, scale: float, image_tokens: int) -> torch.Tensor:
        self.state.layers_seen += 1
        if not self.joint:
            return super().attend(query, key, value, scale, image_tokens)
        (query_u, query), (key_u, key), (value_u, value) = (split_guidance(x) for x in (query, key, value))
        unconditional = F.scaled_dot_product_attention(query_u, key_u, value_u, scale=scale)
        if self.plan.self_weights is not None:
            query, key = replace_image_queries_keys(query, key, image_tokens,
                                                    self.state.at_step(self.plan.self_weights))
        if self.edits or self.stores:
            conditional = self.edit_cross(query, key, value, scale, image_tokens)
        else:
            conditional = F.scaled_dot_product_attention(query, key, value, scale=scale)
        return stack_for_guidance(unconditional, conditional)

    def edit_cross(self, query, key, value, scale: float, image_tokens: int) -> torch.Tensor:
        """The conditional rows (P, h, n, d) with the targets' T2I slices edited, the maps kept."""
        plan = self.plan
        image_part, text_slice = image_part_and_text_slice(query, key, value, scale, image_tokens)
        maps = text_slice[:, :, :image_tokens]  # (P, h, image, text): the joint softmax's T2I slice
        if maps.shape[-1] != plan.token_maps.shape[-1]:
            raise ValueError(f"the plan has {plan.token_maps.shape[-1]} text keys, the transformer "
                             f"{maps.shape[-1]}; build it with joint_plan.build_joint_plan for this model")
        if self.edits:
            source, targets = split_source(maps)
            targets = edit_cross_attention(source[0], targets, plan.token_maps, plan.token_alphas, plan.equalizer,
                                           self.state.at_step(plan.cross_alphas))
            maps = join_source(source, targets)
            text_slice = torch.cat([maps, text_slice[:, :, image_tokens:]], dim=2)
        if self.stores:
            prompts, heads, _, keys = maps.shape
            self.state.add_maps(self.layer, maps.detach().float().reshape(prompts, heads,
                                                                          *self.layers.grid_of(image_tokens), keys))
        return joint_output(image_part, text_slice, value[:, :, image_tokens:])


def joint_editing_processors(transformer, plan: EditPlan, state: EditState, layers: JointLayers) -> dict:
    """Every attention processor of `transformer` (joint attn and attn2), for `set_attn_processor`."""
    return {name: JointEditingAttention(plan, state, name, layers) for name in transformer.attn_processors}


def joint_attention_processors(model, plan: EditPlan, state: EditState) -> dict:
    """editing/control.py's `processors` for SD3: the default JointLayers on `model.denoiser`."""
    transformer = model.denoiser
    return joint_editing_processors(transformer, plan, state, JointLayers.for_transformer(transformer.config))
