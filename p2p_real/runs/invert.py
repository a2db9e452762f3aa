"""Invert many photos into an output folder: batched, resumable, safe beside other runs on the same
folder; one bad photo never stops the run.

A photo counts as done when OUTPUT/<photo>/inversion.json (the record, written last) says it was
made from the same photo bytes, caption, model, method, steps, guidance and method options as this
run would use. A record of anything else is neither relabelled nor silently replaced: the photo
fails with one line naming the difference, and `force` replaces it. Each photo is locked
(runs/locks.py) from when it is checked until its artifact is written; a run that finds it locked
leaves it to its owner and reports it as busy.

Photos go to the GPU in batches (`--batch-size`, or `auto`: runs/batch_size.py). A batch that runs
out of GPU memory is split, and the rest of the run takes the smaller size; only a photo that does
not fit alone fails. A write that fails fails its photo alone. The next batch is claimed and the
last one written in two threads while the GPU inverts, with the same files as one after another.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..artifacts import METADATA_FILE, Inversion, read_record, save_inversion, sha256
from ..errors import P2PError
from ..images import load_image, save_png, to_pil
from ..inversion.methods import METHODS
from ..inversion.options import NullTextOptions
from ..models import Model
from ..pipeline import invert
from . import locks
from .batch_size import AUTO, batch_size_option, choose_batch_size
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
                "options": METHODS[self.method].record(self.options, model.text.null_text_record)}


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
    batch_size: int | str = 1,
    force: bool = False,
    progress: bool = True,
    keep_matching: bool = False,
) -> JobReport:
    """Invert each photo into `output/<photo.name>/`. Photos whose artifact records the same work are
    skipped; one recording other work fails, unless `force` (which redoes every photo, or with
    `keep_matching` only those whose artifact records other work). Photos that another run is
    inverting are reported as busy. `batch_size` "auto" fits it to the free GPU memory (runs/batch_size.py)."""
    started = time.perf_counter()
    output, settings, report = Path(output), InversionSettings(method, num_steps, guidance_scale, options), JobReport()
    batch_size = batch_size_option(batch_size)
    limit = BatchLimit(choose_batch_size(model, method, len(photos)) if batch_size == AUTO else batch_size)
    queue = list(reversed(photos))  # popped from the end: in the order given
    claim_next = partial(claim_batch, model, queue, output, settings, force, keep_matching)
    bar = tqdm(total=len(queue), desc="inverting", unit="photo", disable=not progress)
    # So that the GPU never waits on the disk, the next batch is claimed (hashed, decoded) in one
    # thread and the last one written in another while this one inverts: torch releases the GIL while
    # it waits for the GPU, so they run meanwhile. One worker each: at most one batch pending in each,
    # taken and written in the order given, so the files are those of one batch after another.
    with ThreadPoolExecutor(max_workers=1) as reader, ThreadPoolExecutor(max_workers=1) as writer:
        reading, writing = reader.submit(claim_next, limit.size), None
        try:
            while reading is not None:
                batch = reading.result()
                with batch.locks:  # released here only on error: else the writer releases them, once written
                    reading = reader.submit(claim_next, limit.size) if queue else None
                    merge(report, batch.not_claimed, bar)
                    inverted = invert_batch(model, batch.claimed, settings, limit, report, progress)
                    bar.update(len(batch.claimed) - len(inverted))  # those out of memory alone failed
                    if writing is not None:
                        merge(report, writing.result(), bar)
                    writing = writer.submit(write_batch, inverted, output, batch.locks.pop_all())
            if writing is not None:
                merge(report, writing.result(), bar)
        finally:  # stopped midway (Ctrl-C, a bug): the batch claimed meanwhile leaves no photo locked
            if reading is not None and reading.exception() is None:
                reading.result().locks.close()
    bar.close()
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class Batch:
    """Photos claimed to be inverted together, their locks (held until their artifacts are written),
    and the photos of the queue passed over on the way, as skipped, busy or failed."""

    claimed: list[Claimed]
    locks: ExitStack
    not_claimed: JobReport


@dataclass
class BatchLimit:
    """The most photos inverted together; lowered for the rest of the run by a batch that ran out of GPU memory."""

    size: int


def claim_batch(model: Model, queue: list[Photo], output: Path, settings: InversionSettings, force: bool,
                keep_matching: bool, size: int) -> Batch:
    """Claim photos from the end of `queue` until `size` are claimed or none is left (the reader thread's work)."""
    batch = Batch([], ExitStack(), JobReport())
    try:
        while queue and len(batch.claimed) < size:
            claimed = claim(model, queue.pop(), output, settings, force, keep_matching, batch.locks, batch.not_claimed)
            batch.claimed += [claimed] if claimed else []
    except BaseException:
        batch.locks.close()
        raise
    return batch


def merge(report: JobReport, part: JobReport, bar: tqdm) -> None:
    """Add what one stage did with its photos to the run's report, and count them on the progress bar."""
    report.done += part.done
    report.skipped += part.skipped
    report.busy += part.busy
    report.failed += part.failed
    bar.update(len(part.done) + len(part.skipped) + len(part.busy) + len(part.failed))
    if part.done:
        bar.set_postfix(psnr=f"{part.done[-1][1].metrics['psnr']:.1f}")


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


def invert_batch(model: Model, batch: list[Claimed], settings: InversionSettings, limit: BatchLimit, report: JobReport,
                 progress: bool) -> list[tuple[Claimed, Inversion]]:
    """Invert the claimed photos together, `limit.size` at a time. A batch of several that runs out of
    GPU memory is inverted in halves, and `limit` lowered to a half, so that later batches of the run
    start there: one out-of-memory error costs one retry, not one per batch. A photo that runs out of
    memory alone fails, into `report`."""
    if not batch:  # every photo of the last stretch of the queue was settled without inverting
        return []
    if len(batch) > limit.size:  # claimed before the limit was lowered
        size = limit.size
        return [pair for start in range(0, len(batch), size)
                for pair in invert_batch(model, batch[start : start + size], settings, limit, report, progress)]
    try:
        inversions = invert(
            model, [claimed.image for claimed in batch], [claimed.photo.caption for claimed in batch], settings.method,
            settings.num_steps, settings.guidance_scale, settings.options,
            source_paths=[str(claimed.photo.path) for claimed in batch], progress=progress,
        )
    except torch.OutOfMemoryError:
        inversions = None  # handled below, once the traceback no longer holds the failed attempt's tensors
    if inversions is not None:
        for claimed, inversion in zip(batch, inversions):
            inversion.source_sha256 = claimed.source_sha256
        return list(zip(batch, inversions))
    model.free_gpu_memory()
    if len(batch) == 1:
        message = "out of GPU memory: try a smaller --batch-size, or --dtype float16 if you chose float32"
        report.failed.append((batch[0].photo, f"{batch[0].photo.path}: {message}"))
        return []
    half = (len(batch) + 1) // 2
    limit.size = min(limit.size, half)
    return (invert_batch(model, batch[:half], settings, limit, report, progress)
            + invert_batch(model, batch[half:], settings, limit, report, progress))


def write_batch(inverted: list[tuple[Claimed, Inversion]], output: Path, locks: ExitStack) -> JobReport:
    """Write each inversion's artifact, then release the batch's locks (the writer thread's work). A
    write that fails (a full disk, a folder made read-only) fails that photo alone."""
    written = JobReport()
    with locks:
        for claimed, inversion in inverted:
            folder = inside(output, claimed.photo.name)
            try:
                write_artifact(inversion, folder)
            except OSError as error:
                written.failed.append((claimed.photo, f"{folder}: cannot write the artifact ({error.strerror or error}); "
                                                      f"make room or fix the folder's permissions, and run again"))
            else:
                written.done.append((claimed.photo, inversion))
    return written


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
