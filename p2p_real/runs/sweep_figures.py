"""A sweep's two pictures: the grid of edits (rows cross-replace steps, columns self-replace steps, a
block per LocalBlend threshold, each cell labelled with its scores) and fidelity against edit score,
with the Pareto front, the chosen setting and PIE-Bench's."""
from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass

import torch
from PIL import Image, ImageDraw

from ..images import to_pil
from .sweep_grid import Setting

CELL_SIDE = 192  # pixels of an edit in the grid: small models' pictures enlarged, SD's reduced
HEADER = 16  # pixels of a line of text
LABEL_WIDTH = 72  # pixels of the column of row labels
CELL_HEIGHT = CELL_SIDE + 2 * HEADER  # a picture and its two lines of scores
CHOSEN_COLOUR, PIE_BENCH_COLOUR, FRONT_COLOUR = (0, 160, 60), (30, 90, 220), (230, 120, 0)


def cell_label(row: dict) -> tuple[str, str]:
    """Two short lines: fidelity, then the edit (and * on the Pareto front)."""
    lpips = "" if math.isnan(row["lpips_bg"]) else f" LPIPS {row['lpips_bg']:.3f}"
    read = f" {row['read_colour']} {row['read_shape']}" if "read_colour" in row else ""
    return f"PSNR {row['psnr_bg']:.1f}{lpips}", f"edit {row['edit_score']:.2f}{read}{' *' if row['pareto'] else ''}"


@dataclass(frozen=True)
class GridLayout:
    """Where grid.png draws each setting: a block per LocalBlend threshold, in it a row per
    cross-replace value and a column per self-replace value, after a column of row labels."""

    crosses: list[float]
    selves: list[float]
    thresholds: list[float | None]

    @classmethod
    def of(cls, settings: list[Setting]) -> "GridLayout":
        return cls(sorted({s.cross_replace_steps for s in settings if s.in_grid}),
                   sorted({s.self_replace_steps for s in settings if s.in_grid}),
                   list(dict.fromkeys(s.blend_threshold for s in settings if s.in_grid)))

    @property
    def block_height(self) -> int:
        return HEADER * 2 + len(self.crosses) * CELL_HEIGHT

    @property
    def size(self) -> tuple[int, int]:
        return LABEL_WIDTH + len(self.selves) * CELL_SIDE, self.block_height * len(self.thresholds)

    def corner(self, setting: Setting) -> tuple[int, int]:
        """The (left, top) pixel of a grid setting's picture."""
        return (LABEL_WIDTH + self.selves.index(setting.self_replace_steps) * CELL_SIDE,
                self.thresholds.index(setting.blend_threshold) * self.block_height + 2 * HEADER
                + self.crosses.index(setting.cross_replace_steps) * CELL_HEIGHT)

    def setting_at(self, x: int, y: int) -> tuple[float, float, float | None] | None:
        """(cross, self, threshold) of the cell (picture or its labels) at pixel (x, y); None off the cells."""
        block, inside = divmod(y - 2 * HEADER, self.block_height) if y >= 0 else (-1, 0)
        row, column = inside // CELL_HEIGHT, (x - LABEL_WIDTH) // CELL_SIDE
        if not (0 <= block < len(self.thresholds) and 0 <= row < len(self.crosses) and x >= LABEL_WIDTH
                and column < len(self.selves)):
            return None
        return self.crosses[row], self.selves[column], self.thresholds[block]


def grid_picture(settings: list[Setting], edited: list[torch.Tensor | None], rows: list[dict],
                 chosen: int | None) -> Image.Image:
    """Every grid setting's edit, labelled; the chosen cell framed green, PIE-Bench's blue."""
    layout = GridLayout.of(settings)
    canvas = Image.new("RGB", layout.size, "white")
    draw = ImageDraw.Draw(canvas)
    for block, threshold in enumerate(layout.thresholds):
        top = block * layout.block_height
        title = "rows: cross-replace steps, columns: self-replace steps" + (
            "" if threshold is None else f"; LocalBlend threshold {threshold:g}")
        draw.text((4, top + 2), title, fill="black")
        for column, self_replace in enumerate(layout.selves):
            draw.text((LABEL_WIDTH + column * CELL_SIDE + 4, top + HEADER + 2), f"self {self_replace:g}", fill="black")
        for line, cross in enumerate(layout.crosses):
            draw.text((4, top + 2 * HEADER + line * CELL_HEIGHT + CELL_SIDE // 2), f"cross {cross:g}", fill="black")
    for index, (setting, picture, row) in enumerate(zip(settings, edited, rows)):
        if not setting.in_grid or picture is None:
            continue
        left, top = layout.corner(setting)
        canvas.paste(to_pil(picture).resize((CELL_SIDE, CELL_SIDE), Image.Resampling.NEAREST
                                            if picture.shape[0] < CELL_SIDE else Image.Resampling.LANCZOS), (left, top))
        for number, text in enumerate(cell_label(row)):
            draw.text((left + 3, top + CELL_SIDE + 1 + number * (HEADER - 2)), text, fill="black")
        frame = CHOSEN_COLOUR if index == chosen else PIE_BENCH_COLOUR if setting.is_pie_bench else None
        if frame:
            draw.rectangle((left, top, left + CELL_SIDE - 1, top + CELL_SIDE - 1), outline=frame, width=4)
    return canvas


def scatter_plot(settings: list[Setting], rows: list[dict], chosen: int | None, title: str,
                 edit_label: str) -> Image.Image:
    """Fidelity (background PSNR) against edit score, one point per setting; the front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.6), dpi=110)
    points = [(row["psnr_bg"], row["edit_score"]) for row in rows]
    axes.scatter(*zip(*points), s=28, color="0.6", label="setting", zorder=2)
    front = sorted(((point, setting) for point, setting, row in zip(points, settings, rows) if row["pareto"]),
                   key=lambda pair: pair[0])
    if front:
        axes.plot([p[0] for p, _ in front], [p[1] for p, _ in front], "-o", color=[c / 255 for c in FRONT_COLOUR],
                  markersize=6, label="Pareto front (labels: cross/self[/threshold])", zorder=3)
        labels: dict[tuple, list[str]] = {}  # equal points share one label
        for point, setting in front:
            labels.setdefault(point, []).append(f"{setting.cross_replace_steps:g}/{setting.self_replace_steps:g}" + (
                "" if setting.blend_threshold is None else f"/{setting.blend_threshold:g}"))
        for point, texts in labels.items():
            axes.annotate(", ".join(texts), point, textcoords="offset points", xytext=(4, 4), fontsize=7)
    for index, (setting, point) in enumerate(zip(settings, points)):
        if setting.is_pie_bench:
            axes.scatter(*point, s=150, facecolors="none", edgecolors=[c / 255 for c in PIE_BENCH_COLOUR], linewidths=2,
                         label="PIE-Bench default (cross 0.4, self 0.6)", zorder=4)
        if index == chosen:
            axes.scatter(*point, s=220, marker="*", color=[c / 255 for c in CHOSEN_COLOUR], label="chosen", zorder=5)
    axes.set_xlabel("fidelity: background PSNR against the photo (dB), higher is better", fontsize=8)
    axes.set_ylabel(f"edit: {edit_label}, higher is better", fontsize=8)
    axes.set_title(textwrap.fill(title, 90), fontsize=8)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    encoded = io.BytesIO()
    figure.savefig(encoded, format="png")
    plt.close(figure)
    return Image.open(io.BytesIO(encoded.getvalue())).convert("RGB")
