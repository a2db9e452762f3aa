"""Invert many photos into an output folder: batched, resumable, one bad photo never stops the run."""
from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..artifacts import Inversion, is_complete, save_inversion
from ..errors import P2PError
from ..images import load_image, save_png, to_pil
from ..inversion.options import NullTextOptions
from ..models import Model
from ..pipeline import invert
from .photos import Photo
from .report import RunReport


JobReport = RunReport[Photo, Inversion]


def invert_photos(
    model: Model,
    photos: list[Photo],
    output: str | Path,
    method: str = "null-text",
    num_steps: int = 50,
    guidance_scale: float = 7.5,
    options: NullTextOptions = NullTextOptions(),
    batch_size: int = 1,
    force: bool = False,
    progress: bool = True,
) -> JobReport:
    """Invert each photo into `output/<name>/`; photos whose artifact exists are skipped unless `force`."""
    started = time.perf_counter()
    output = Path(output)
    report = JobReport()
    ready = [photo for photo in photos if to_invert(model, photo, output, force, report)]
    bar = tqdm(total=len(ready), desc="inverting", unit="photo", disable=not progress)
    for start in range(0, len(ready), batch_size):
        batch = []  # photos are read a batch at a time, so a large folder never sits in memory
        for photo in ready[start : start + batch_size]:
            try:
                batch.append((photo, load_image(photo.path, model.resolution)))
            except P2PError as error:
                report.failed.append((photo, str(error)))
                bar.update()
        if not batch:
            continue
        try:
            inversions = invert(
                model, [image for _, image in batch], [photo.caption for photo, _ in batch], method, num_steps,
                guidance_scale, options, source_paths=[str(photo.path) for photo, _ in batch], progress=progress,
            )
        except torch.OutOfMemoryError:
            message = "out of GPU memory: try a smaller --batch-size, or --dtype float16 if you chose float32"
            report.failed.extend((photo, f"{photo.path}: {message}") for photo, _ in batch)
            bar.update(len(batch))
            continue
        for (photo, _), inversion in zip(batch, inversions):
            write_artifact(inversion, output / photo.name)
            report.done.append((photo, inversion))
        bar.update(len(batch))
        bar.set_postfix(psnr=f"{inversions[-1].metrics['psnr']:.1f}")
    bar.close()
    report.seconds = time.perf_counter() - started
    return report


def to_invert(model: Model, photo: Photo, output: Path, force: bool, report: JobReport) -> bool:
    """Whether `photo` needs inverting; if not, it goes into the report as skipped or failed."""
    if not force and is_complete(output / photo.name):
        report.skipped.append(photo)
    elif not photo.caption:
        report.failed.append((photo, f"{photo.path}: no caption; give --prompt or add it to captions.json or {photo.path.stem}.txt"))
    else:
        try:
            model.token_ids([photo.caption])  # a caption too long fails here, before any photo is read
            return True
        except P2PError as error:
            report.failed.append((photo, str(error)))
    return False


def write_artifact(inversion: Inversion, folder: Path) -> None:
    """The artifact, then the two pictures a person looks at first; inversion.json last of all."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "prompt": inversion.prompt,
        "steps": inversion.num_steps,
        "guidance": inversion.guidance_scale,
        "method": inversion.method,
        "model": inversion.model_name,
    }
    save_png(to_pil(inversion.image), folder / "source.png", {**settings, "source": inversion.source_path})
    save_png(to_pil(inversion.reconstruction), folder / "reconstruction.png", {**settings, **inversion.options, "metrics": inversion.metrics})
    save_inversion(inversion, folder)
