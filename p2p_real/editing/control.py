"""How Prompt-to-Prompt reaches a model family's attention, as a table: the plan over its text keys
and the processors that apply it. The family's adapter names its kind (`attention_kind`): a UNet's
cross-attention (SD v1, SDXL), or an MM-DiT's joint attention (SD3, whose plan spans 77 CLIP and 256
T5 keys). `edit` and `controlled` ask this table, never the family."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..errors import P2PError
from .attention import EditingAttention
from .joint_editing import joint_attention_processors
from .joint_plan import joint_attention_plan
from .options import EditOptions
from .plan import EditPlan, build_plan
from .state import EditState


def unet_processors(model, plan: EditPlan, state: EditState) -> dict:
    return {name: EditingAttention(plan, state, name) for name in model.denoiser.attn_processors}


@dataclass(frozen=True)
class AttentionControl:
    plan: Callable[..., EditPlan]  # (model, source, targets, options, num_steps, regions) -> EditPlan
    processors: Callable[[object, EditPlan, EditState], dict]  # (model, plan, state) -> {layer: processor}


CONTROLS: dict[str, AttentionControl] = {
    "cross-attention": AttentionControl(build_plan, unet_processors),
    "joint attention": AttentionControl(joint_attention_plan, joint_attention_processors),  # joint_editing.py
}


def control_of(model) -> AttentionControl:
    kind = model.text.attention_kind
    if kind not in CONTROLS:
        raise P2PError(f"model {model.name!r}: Prompt-to-Prompt editing on its {kind} is not built; "
                       f"invert works, edit needs a model of another family")
    return CONTROLS[kind]


def edit_plan(model, source: str, targets: list[str], options: list[EditOptions], num_steps: int,
              regions: Sequence[torch.Tensor | None] | None = None) -> EditPlan:
    """The family's plan for editing `source` into `targets` (build_plan's arguments, the model first)."""
    return control_of(model).plan(model, source, targets, options, num_steps, regions)
