"""Invert many photos into an output folder: batched, resumable, safe beside other runs on the same
folder; one bad photo never stops the run.

A photo counts as done when OUTPUT/<photo>/inversion.json (the record, written last) says it was
made from the same photo bytes, caption, model, method, steps, guidance and method options as this
run would use. A record of anything else is neither relabelled nor silently replaced: the photo
fails with one line naming the difference, and `force` replaces it. Each photo is locked
(runs/locks.py) while it is checked and inverted; a run that finds it locked leaves it to its owner
and reports it as busy.
"""
from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..artifacts import METADATA_FILE, Inversion, read_record, save_inversion, sha256
from ..errors import P2PError
from ..images import load_image, save_png, to_pil
from ..inversion.options import NullTextOptions
from ..models import Model
from ..pipeline import invert, method_record
from . import locks
from .naming import inside
from .photos import Photo
from .report import RunReport

JobReport = RunReport[Photo, Inversion]
# How the record's fields read in a message: "inverted with steps 10, not 20".
RECORD_LABELS = {"prompt": "the prompt", "model_fingerprint": "the model fingerprint", "method": "the method",
                 "num_steps": "steps", "guidance_scale": "guidance"}


@dataclass(frozen=True)
class InversionSettings:
    """What a run asks of every photo's inversion."""

    method: str = "null-text"
    num_steps: int = 50
    guidance_scale: float = 7.5
    options: NullTextOptions = NullTextOptions()

    def record(self, model: Model, caption: str, source_sha256: str) -> dict:
        """The fields of inversion.json that an inversion of this photo by this run would hold."""
        return {"source_sha256": source_sha256, "prompt": caption, "model_fingerprint": model.fingerprint,
                "method": self.method, "num_steps": self.num_steps, "guidance_scale": self.guidance_scale,
                # null-text records its options; the other methods take none (methods.METHODS)
                "options": method_record(model, self.method, asdict(self.options) if self.method == "null-text" else {})}


@dataclass
class Claimed:
    """A photo this run holds the lock of and will invert."""

    photo: Photo
    image: Image.Image
    source_sha256: str


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
    keep_matching: bool = False,
) -> JobReport:
    """Invert each photo into `output/<photo.name>/`. Photos whose artifact records the same work are
    skipped; one recording other work fails, unless `force` (which redoes every photo, or with
    `keep_matching` only those whose artifact records other work). Photos that another run is
    inverting are reported as busy."""
    started = time.perf_counter()
    output, settings, report = Path(output), InversionSettings(method, num_steps, guidance_scale, options), JobReport()
    queue = list(reversed(photos))  # popped from the end: in the order given
    bar = tqdm(total=len(queue), desc="inverting", unit="photo", disable=not progress)
    while queue:
        with ExitStack() as held:  # the batch's locks, released once its artifacts are written
            batch = []
            while queue and len(batch) < batch_size:  # photos are read a batch at a time
                claimed = claim(model, queue.pop(), output, settings, force, keep_matching, held, report)
                batch += [claimed] if claimed else []
                bar.update(0 if claimed else 1)
            if batch:
                invert_batch(model, batch, output, settings, report, progress)
                bar.update(len(batch))
                bar.set_postfix(psnr=f"{report.done[-1][1].metrics['psnr']:.1f}" if report.done else "-")
    bar.close()
    report.seconds = time.perf_counter() - started
    return report


def claim(model: Model, photo: Photo, output: Path, settings: InversionSettings, force: bool, keep_matching: bool,
          held: ExitStack, report: JobReport) -> Claimed | None:
    """Lock the photo's folder and read the photo when it needs inverting; else report why not."""
    if not photo.caption:
        report.failed.append((photo, f"{photo.path}: no caption; give --prompt or add it to captions.json or {photo.path.stem}.txt"))
        return None
    with ExitStack() as lock:
        try:
            folder = inside(output, photo.name)
            model.token_ids([photo.caption])  # a caption too long fails here, before any photo is read
            if not lock.enter_context(locks.claimed(folder)):
                report.busy.append(photo)
                return None
            digest = file_sha256(photo.path)
            wanted = settings.record(model, photo.caption, digest)
            if settled(folder, photo, wanted, force and not keep_matching, force, report):
                return None
            image = load_image(photo.path, model.resolution)
        except P2PError as error:
            report.failed.append((photo, str(error)))
            return None
        held.enter_context(lock.pop_all())
        return Claimed(photo, image, digest)


def settled(folder: Path, photo: Photo, wanted: dict, redo: bool, replace: bool, report: JobReport) -> bool:
    """Whether the artifact in `folder` settles the photo: done (skipped), or made otherwise or
    damaged (failed, unless `replace`). `redo` redoes it whatever it records."""
    try:
        recorded = read_record(folder)
    except P2PError as error:
        recorded, problem = {}, f"{error}, or use another --output"
    else:
        difference = None if recorded is None else record_difference(recorded, wanted)
        problem = difference and f"{folder}: {difference}; pass --force to replace it, or use another --output"
    if recorded is None or redo or (problem and replace):
        return False
    if problem:
        report.failed.append((photo, problem))
    else:
        report.skipped.append(photo)
    return True


def record_difference(recorded: dict, wanted: dict) -> str | None:
    """How an artifact's record differs from what this run would make, in words; None when it does not."""
    if not recorded.get("source_sha256"):
        return "inverted by an older p2p-real, which did not record the photo's bytes"
    if recorded["source_sha256"] != wanted["source_sha256"]:
        return f"inverted from another photo ({recorded.get('source_path') or 'a photo with other bytes'})"
    differences = [f"{label} {recorded.get(key)!r}, not {wanted[key]!r}"
                   for key, label in RECORD_LABELS.items() if recorded.get(key) != wanted[key]]
    options, wanted_options = recorded.get("options", {}), wanted["options"]
    differences += [f"{key} {options.get(key)!r}, not {wanted_options.get(key)!r}"
                    for key in sorted(set(options) | set(wanted_options)) if options.get(key) != wanted_options.get(key)]
    return f"inverted with {', and '.join(differences)}" if differences else None


def file_sha256(path: Path) -> str:
    try:
        return sha256(path)
    except OSError as error:
        raise P2PError(f"{path}: cannot be read ({error.strerror or error})") from None


def invert_batch(model: Model, batch: list[Claimed], output: Path, settings: InversionSettings, report: JobReport,
                 progress: bool) -> None:
    """Invert the claimed photos together and write each one's artifact."""
    try:
        inversions = invert(
            model, [claimed.image for claimed in batch], [claimed.photo.caption for claimed in batch], settings.method,
            settings.num_steps, settings.guidance_scale, settings.options,
            source_paths=[str(claimed.photo.path) for claimed in batch], progress=progress,
        )
    except torch.OutOfMemoryError:
        message = "out of GPU memory: try a smaller --batch-size, or --dtype float16 if you chose float32"
        report.failed.extend((claimed.photo, f"{claimed.photo.path}: {message}") for claimed in batch)
        return
    for claimed, inversion in zip(batch, inversions):
        inversion.source_sha256 = claimed.source_sha256
        write_artifact(inversion, inside(output, claimed.photo.name))
        report.done.append((claimed.photo, inversion))


def invert_waiting(model: Model, photos: list[Photo], output: Path, **settings) -> JobReport:
    """invert_photos, then, for the photos other runs were inverting, wait until each is free and
    take it up again (done by then, or failed there and tried here): no photo is left busy."""
    started = time.perf_counter()
    report = invert_photos(model, photos, output, **settings)
    waiting = report.busy
    while waiting:
        locks.wait_briefly()
        again = invert_photos(model, waiting, output, **settings)
        report.done += again.done
        report.skipped += again.skipped
        report.failed += again.failed
        waiting = again.busy
    report.busy, report.seconds = [], time.perf_counter() - started
    return report


def write_artifact(inversion: Inversion, folder: Path) -> None:
    """The two pictures a person looks at first, then the artifact; its record, inversion.json, last
    of all, and an earlier record removed first, so that a run killed on the way leaves it to redo."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / METADATA_FILE).unlink(missing_ok=True)
    settings = {
        "prompt": inversion.prompt,
        "steps": inversion.num_steps,
        "guidance": inversion.guidance_scale,
        "method": inversion.method,
        "model": inversion.model_name,
    }
    save_png(to_pil(inversion.image), folder / "source.png", {**settings, "source": inversion.source_path,
                                                              "source_sha256": inversion.source_sha256})
    save_png(to_pil(inversion.reconstruction), folder / "reconstruction.png", {**settings, **inversion.options, "metrics": inversion.metrics})
    save_inversion(inversion, folder)
