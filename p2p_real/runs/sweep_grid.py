"""The settings a sweep tries: cross-replace steps x self-replace steps (x LocalBlend thresholds), read
from the flags and checked before torch is imported, and PIE-Bench's setting, which every sweep runs
too, so that its choice is always compared with the default a user would otherwise take."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..editing.options import EditOptions
from ..errors import P2PError

DEFAULT_CROSS = "0.2,0.4,0.6,0.8"
DEFAULT_SELF = "0.2,0.4,0.6,0.8"
DEFAULT_SETTINGS_PER_PASS = 8  # as many as the edits of one photo in `p2p-real edit` (runs/edits.py)
# PIE-Bench's P2P runner (Ju et al. 2024), EditOptions' own defaults: cross 0.4, self 0.6, threshold 0.3.
PIE_BENCH = EditOptions()


@dataclass(frozen=True)
class Setting:
    """One cell of the grid; `blend_threshold` is None when the sweep has no LocalBlend."""

    cross_replace_steps: float
    self_replace_steps: float
    blend_threshold: float | None = None
    in_grid: bool = True  # False: PIE-Bench's setting, run beside a grid that lacks it

    def options(self, base: EditOptions) -> EditOptions:
        """`base` (kind, blend words, re-weights) with this cell's strengths."""
        threshold = base.blend_threshold if self.blend_threshold is None else self.blend_threshold
        return replace(base, cross_replace_steps=self.cross_replace_steps, self_replace_steps=self.self_replace_steps,
                       blend_threshold=threshold)

    @property
    def label(self) -> str:
        threshold = "" if self.blend_threshold is None else f", threshold {self.blend_threshold:g}"
        return f"cross {self.cross_replace_steps:g}, self {self.self_replace_steps:g}{threshold}"

    @property
    def file_name(self) -> str:
        threshold = "" if self.blend_threshold is None else f"-threshold-{self.blend_threshold:g}"
        return f"cross-{self.cross_replace_steps:g}-self-{self.self_replace_steps:g}{threshold}.png"

    @property
    def is_pie_bench(self) -> bool:
        return (self.cross_replace_steps, self.self_replace_steps) \
            == (PIE_BENCH.cross_replace_steps, PIE_BENCH.self_replace_steps) \
            and self.blend_threshold in (None, PIE_BENCH.blend_threshold)


@dataclass(frozen=True)
class SweepGrid:
    cross: tuple[float, ...]
    self_replace: tuple[float, ...]
    thresholds: tuple[float | None, ...] = (None,)  # (None,): no LocalBlend

    def settings(self) -> list[Setting]:
        """The grid, threshold by threshold, row (cross) by row, column (self) by column; then
        PIE-Bench's setting where the grid lacks it."""
        cells = [Setting(cross, self_replace, threshold)
                 for threshold in self.thresholds for cross in self.cross for self_replace in self.self_replace]
        if not any(cell.is_pie_bench for cell in cells):
            threshold = None if self.thresholds == (None,) else PIE_BENCH.blend_threshold
            cells.append(Setting(PIE_BENCH.cross_replace_steps, PIE_BENCH.self_replace_steps, threshold, in_grid=False))
        return cells


def sweep_grid(cross: str, self_replace: str, thresholds: str | None, blend: list[str] | None) -> SweepGrid:
    """The flags' grid; a bad value is a P2PError naming its flag."""
    if thresholds is not None and not blend:
        raise P2PError("--thresholds: a LocalBlend threshold needs --blend SOURCE_WORD TARGET_WORD; add it, "
                       "or leave --thresholds out")
    return SweepGrid(fractions("--cross", cross), fractions("--self", self_replace),
                     fractions("--thresholds", thresholds) if thresholds is not None
                     else (PIE_BENCH.blend_threshold,) if blend else (None,))


def fractions(flag: str, text: str) -> tuple[float, ...]:
    """'0.2,0.4' as (0.2, 0.4): sorted, each once, each in [0, 1]."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise P2PError(f"{flag} {text!r}: expected fractions in [0, 1] separated by commas, "
                           "e.g. 0.2,0.4,0.6") from None
        if not math.isfinite(value) or not 0 <= value <= 1:
            raise P2PError(f"{flag}: {part.strip()} is not a fraction of the steps in [0, 1]; e.g. 0.2,0.4,0.6")
        values.append(value)
    return tuple(sorted(set(values)))
