"""Options of a Prompt-to-Prompt edit; defaults are PIE-Bench's P2P runner (Ju et al. 2024)."""
from __future__ import annotations

from dataclasses import dataclass, field

EDIT_KINDS = ("auto", "replace", "refine", "reweight")


@dataclass(frozen=True)
class EditOptions:
    kind: str = "auto"  # auto: replace when the word counts match, else refine; reweight: words only
    cross_replace_steps: float | tuple[float, float] | dict = 0.4  # fraction of steps, or per word
    self_replace_steps: float | tuple[float, float] = 0.6
    reweights: dict[str, float] = field(default_factory=dict)  # target word -> factor in [-2, 2]
    blend_words: tuple[str, str] | None = None  # (word in the source, word in the target)
    blend_start: float = 0.2  # LocalBlend from step int(0.2 T) on
    blend_threshold: float = 0.3
