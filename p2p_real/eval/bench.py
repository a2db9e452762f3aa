"""Benchmarks users run: reconstruction quality and time per inversion method, and edit quality
(fidelity to the source against success of the edit) in PIE-Bench's form."""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..artifacts import is_complete, load_inversion
from ..editing.edit import edit
from ..editing.options import EditOptions
from ..errors import P2PError
from ..images import load_image, save_png, to_pil, to_tensor
from ..pipeline import invert
from ..inversion.job import write_artifact
from ..inversion.options import NullTextOptions
from ..models import Model
from ..photos import Photo
from . import metrics


@dataclass
class MetricModels:
    """The networks behind LPIPS, CLIP score and structure distance; any may be absent."""

    lpips: object | None = None
    clip: object | None = None
    structure: object | None = None

    @classmethod
    def load(cls, names: set[str], weights: str = "pretrained", device=None, lpips_net: str = "alex",
             clip_model: str | None = None, structure_model: str | None = None) -> "MetricModels":
        """weights="random" builds small random networks offline: plumbing runs only, not scores.
        PIE-Bench's own choices: LPIPS on SqueezeNet, CLIP ViT-L/14, DINO ViT-B/8."""
        random = weights == "random"
        models = cls()
        if "lpips" in names:
            from .lpips_metric import LPIPS

            models.lpips = LPIPS(lpips_net, weights, device)
        if "clip" in names:
            from .clip_score import DEFAULT_CLIP, ClipScore

            models.clip = ClipScore.random() if random else ClipScore.load(clip_model or DEFAULT_CLIP, device)
        if "structure" in names:
            from .structure import DEFAULT_DINO, StructureDistance

            models.structure = StructureDistance.random() if random else StructureDistance.load(structure_model or DEFAULT_DINO, device)
        return models


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_reconstruct(
    model: Model,
    photos: list[Photo],
    methods: list[str],
    metric_models: MetricModels,
    num_steps: int = 50,
    guidance_scale: float = 7.5,
    options: NullTextOptions = NullTextOptions(),
    progress: bool = True,
) -> list[dict]:
    """One row per (photo, method): seconds for the whole inversion and its reconstruction metrics."""
    rows = []
    loaded = []
    for photo in photos:
        try:
            loaded.append((photo, load_image(photo.path, model.resolution)))
        except P2PError as error:
            rows.append({"photo": str(photo.path), "error": str(error)})
    if loaded:  # one-time costs (kernels, allocator, caches) stay out of the first method's time
        invert(model, [loaded[0][1]], [loaded[0][0].caption], "ddim", 1, guidance_scale)
    bar = tqdm(total=len(loaded) * len(methods), desc="bench reconstruct", disable=not progress)
    for photo, image in loaded:
        for method in methods:
            synchronize(model.device)
            started = time.perf_counter()
            [inversion] = invert(model, [image], [photo.caption], method, num_steps, guidance_scale, options)
            synchronize(model.device)
            row = {"photo": str(photo.path), "method": method, "seconds": time.perf_counter() - started, **inversion.metrics}
            if metric_models.lpips is not None:
                pair = to_tensor([to_pil(inversion.reconstruction), image])
                row["lpips"] = float(metric_models.lpips(pair[:1], pair[1:])[0])
            rows.append(row)
            bar.update()
    bar.close()
    return rows


def summarize(rows: list[dict], group_by: str, columns: list[str]) -> dict[str, dict]:
    """Mean of each column per group, NaN and missing values excluded and counted."""
    groups: dict[str, dict] = {}
    for row in rows:
        if group_by not in row:
            continue
        group = groups.setdefault(str(row[group_by]), {"count": 0, **{c: [] for c in columns}})
        group["count"] += 1
        for column in columns:
            value = row.get(column)
            if value is not None and not math.isnan(value) and not math.isinf(value):
                group[column].append(value)
    summary = {}
    for name, group in groups.items():
        summary[name] = {"count": group["count"]}
        for column in columns:
            values = group[column]
            summary[name][column] = sum(values) / len(values) if values else float("nan")
            summary[name][f"{column}_excluded"] = group["count"] - len(values)
    return summary


def format_table(summary: dict[str, dict], columns: list[str], title: str) -> str:
    lines = [f"{title:<18}" + "".join(f"{column:>12}" for column in ["n", *columns])]
    for name, values in summary.items():
        cells = "".join(f"{values[column]:>12.4g}" for column in columns)
        lines.append(f"{name:<18}{values['count']:>12}{cells}")
    excluded = sorted({f"{c}: {v[c + '_excluded']} in {n}" for n, v in summary.items() for c in columns if v[c + "_excluded"]})
    if excluded:
        lines.append("NaN or missing values excluded from the means (" + "; ".join(excluded) + ")")
    return "\n".join(lines)


def plot_quality_against_time(summary: dict[str, dict], path: Path, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, 2, figsize=(9, 3.5), dpi=120)
    for axes, column, label in ((panels[0], "psnr", "reconstruction PSNR (dB), higher is better"),
                                (panels[1], "latent_mse", "latent MSE to the photo's latent, lower is better")):
        for method, values in summary.items():
            axes.scatter(values["seconds"], values[column], s=40)
            axes.annotate(method, (values["seconds"], values[column]), textcoords="offset points", xytext=(5, 5))
        axes.set_xscale("log")
        axes.set_xlabel(f"seconds per photo ({device})")
        axes.set_ylabel(label, fontsize=8)
        axes.grid(alpha=0.3)
    figure.suptitle("Inversion methods: quality against time")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def bench_edit(
    model: Model,
    edits: list,
    output: Path,
    metric_models: MetricModels,
    method: str = "null-text",
    num_steps: int = 50,
    options: EditOptions = EditOptions(),
    progress: bool = True,
) -> list[dict]:
    """Invert each photo (kept in OUTPUT/artifacts/ for resuming), edit it, score the edit."""
    rows = []
    for entry in tqdm(edits, desc="bench edit", disable=not progress):
        try:
            folder = output / "artifacts" / entry.key
            if is_complete(folder):
                inversion = load_inversion(folder, model)
            else:
                image = load_image(entry.image, model.resolution)
                [inversion] = invert(model, [image], [entry.source_prompt], method, num_steps, source_paths=[str(entry.image)])
                write_artifact(inversion, folder)
            edit_options = entry.options or EditOptions(
                kind=options.kind, cross_replace_steps=options.cross_replace_steps,
                self_replace_steps=options.self_replace_steps, blend_words=entry.blend_words,
            )
            result = edit(model, inversion, entry.target_prompt, edit_options)
        except P2PError as error:
            rows.append({"key": entry.key, "type": entry.edit_type, "error": str(error)})
            continue
        (output / "edits").mkdir(parents=True, exist_ok=True)
        save_png(to_pil(result.edited), output / "edits" / f"{entry.key}.png", {
            "prompt": entry.target_prompt, "source_prompt": entry.source_prompt, "steps": inversion.num_steps,
            "guidance": inversion.guidance_scale, "method": inversion.method, "model": model.name, "kind": result.kind,
        })
        rows.append({"key": entry.key, "type": entry.edit_type, **edit_scores(result, entry, metric_models)})
    return rows


def edit_scores(result, entry, metric_models: MetricModels) -> dict[str, float]:
    """PIE-Bench's columns: structure distance; PSNR, LPIPS, MSE, SSIM outside the edit mask;
    CLIP score of the whole edit and of the edited region (NaN where no mask or no network)."""
    source, edited = to_tensor([to_pil(result.source), to_pil(result.edited)]).split(1)
    nan = float("nan")
    scores = {"structure": nan, "psnr_bg": nan, "lpips_bg": nan, "mse_bg": nan, "ssim_bg": nan, "clip_whole": nan, "clip_edited": nan}
    if metric_models.structure is not None:
        scores["structure"] = float(metric_models.structure(edited, source)[0])
    if metric_models.clip is not None:
        scores["clip_whole"] = float(metric_models.clip(edited, [entry.target_prompt])[0])
    if entry.mask is not None:
        mask = torch.nn.functional.interpolate(torch.from_numpy(entry.mask)[None, None], size=source.shape[2:], mode="nearest")
        edited_bg, source_bg = metrics.background(edited, mask), metrics.background(source, mask)
        scores.update(psnr_bg=float(metrics.psnr(edited_bg, source_bg)[0]), mse_bg=float(metrics.mse(edited_bg, source_bg)[0]),
                      ssim_bg=float(metrics.ssim(edited_bg, source_bg)[0]))
        if metric_models.lpips is not None:
            scores["lpips_bg"] = float(metric_models.lpips(edited_bg, source_bg)[0])
        if metric_models.clip is not None:
            scores["clip_edited"] = float(metric_models.clip(metrics.masked(edited, mask), [entry.target_prompt])[0])
    return scores


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
