"""The attention processor of an edit: `FusedAttention` whose `attend` applies an `EditPlan`.

Cross-attention forms explicit probabilities (77 keys: cheap) and edits the targets' rows;
self-attention stays fused SDPA, with the source's queries and keys over the targets' values mixed in
by the step's weight. Only the conditional rows are edited; the unconditional ones are left alone.
Installed and removed by `Model.controlled`, which owns the processors' lifetime.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attention import FusedAttention
from ..rows import join_source, split_guidance, split_source, stack_for_guidance
from .attention_edits import edit_cross_attention, self_replace
from .plan import EditPlan
from .state import EditState


def place_of(layer_name: str) -> str:
    """'down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor' -> 'down'."""
    return layer_name.split("_")[0].split(".")[0]


class EditingAttention(FusedAttention):
    def __init__(self, plan: EditPlan, state: EditState, layer: str):
        self.plan, self.state, self.layer = plan, state, layer
        self.place = place_of(layer)  # "down", "mid" or "up"

    def attend(self, query, key, value, scale: float, is_cross: bool) -> torch.Tensor:
        self.state.layers_seen += 1
        num_queries = query.shape[2]
        if is_cross:
            probabilities = (query @ key.transpose(-1, -2) * scale).softmax(dim=-1)  # (2P, h, q, k)
            probabilities = self.edit_cross(probabilities, num_queries)
            return probabilities.to(value.dtype) @ value
        hidden_states = F.scaled_dot_product_attention(query, key, value, scale=scale)
        if self.plan.self_weights is None or num_queries > self.plan.self_max_queries:
            return hidden_states
        unconditional, conditional = split_guidance(hidden_states)
        source, targets = split_source(conditional)
        source_query = split_source(split_guidance(query)[1])[0]
        source_key = split_source(split_guidance(key)[1])[0]
        target_values = split_source(split_guidance(value)[1])[1]
        targets = self_replace(targets, source_query, source_key, target_values,
                               self.state.at_step(self.plan.self_weights), scale)
        return stack_for_guidance(unconditional, join_source(source, targets))

    def edit_cross(self, probabilities: torch.Tensor, num_queries: int) -> torch.Tensor:
        unconditional, conditional = split_guidance(probabilities)
        source, targets = split_source(conditional)
        plan = self.plan
        targets = edit_cross_attention(source[0], targets, plan.token_maps, plan.token_alphas, plan.equalizer,
                                       self.state.at_step(plan.cross_alphas))
        conditional = join_source(source, targets)
        if self.place != "mid" and num_queries == plan.store_resolution**2:  # LocalBlend reads the edited maps
            prompts, heads, _, keys = conditional.shape
            resolution = plan.store_resolution
            self.state.add_maps(self.layer,
                                conditional.detach().float().reshape(prompts, heads, resolution, resolution, keys))
        return stack_for_guidance(unconditional, conditional)
