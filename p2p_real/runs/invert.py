"""Invert many photos into an output folder: batched, resumable, safe beside other runs on the same
folder; one bad photo never stops the run.

A photo counts as done when OUTPUT/<photo>/inversion.json (the record, written last) says it was
made from the same work as this run would do (runs/invert_claims.py); a record of anything else
fails the photo with one line naming the difference, and `force` replaces it. A photo another run
holds locked is left to its owner and reported as busy.

Photos go to the GPU in batches (`--batch-size`, or `auto`: runs/batch_size.py). A batch that runs
out of GPU memory is split, and the rest of the run takes the smaller size; only a photo that does
not fit alone fails. A write that fails fails its photo alone. The next batch is claimed and the
last one written in two threads while the GPU inverts, with the same files as one after another.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from tqdm.auto import tqdm

from ..artifacts import METADATA_FILE, Inversion, save_inversion
from ..images import save_png, to_pil
from ..models import Model
from ..pipeline import invert
from . import locks
from .batch_size import AUTO, batch_size_option, choose_batch_size
from .invert_claims import Claimed, InversionSettings, JobReport, claim_batch, file_sha256
from .memory import BatchLimit, Failed, split_on_out_of_memory
from .naming import inside
from .photos import Photo

__all__ = ["InversionSettings", "file_sha256", "invert_photos", "invert_waiting"]
OUT_OF_MEMORY_ADVICE = "try a smaller --batch-size, or --dtype float16 if you chose float32"


def invert_photos(
    model: Model,
    photos: list[Photo],
    output: str | Path,
    settings: InversionSettings = InversionSettings(),
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
    output, report, settings = Path(output), JobReport(), settings.for_model(model)
    batch_size = batch_size_option(batch_size)  # the API's argument, as the command line's (runs/flags.py)
    limit = BatchLimit(choose_batch_size(model, settings.method, len(photos)) if batch_size == AUTO else batch_size)
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


def merge(report: JobReport, part: JobReport, bar: tqdm) -> None:
    """Add what one stage did with its photos to the run's report, and count them on the progress bar."""
    bar.update(report.add(part))
    if part.done:
        bar.set_postfix(psnr=f"{part.done[-1][1].metrics['psnr']:.1f}")


def invert_batch(model: Model, batch: list[Claimed], settings: InversionSettings, limit: BatchLimit, report: JobReport,
                 progress: bool) -> list[tuple[Claimed, Inversion]]:
    """Invert the claimed photos together, `limit.size` at a time. A batch of several that runs out of
    GPU memory is inverted in halves, and `limit` lowered to a half, so that later batches of the run
    start there (runs/memory.py). A photo that runs out of memory alone fails, into `report`."""
    def work(part: list[Claimed]) -> list[Inversion]:
        return invert(model, [claimed.image for claimed in part], [claimed.photo.caption for claimed in part],
                      settings.method, settings.num_steps, settings.guidance_scale, settings.options,
                      source_paths=[str(claimed.photo.path) for claimed in part], progress=progress)

    inverted = []
    for claimed, outcome in zip(batch, split_on_out_of_memory(work, batch, model, OUT_OF_MEMORY_ADVICE, limit)):
        if isinstance(outcome, Failed):
            report.failed.append((claimed.photo, f"{claimed.photo.path}: {outcome.message}"))
        else:
            outcome.source_sha256 = claimed.source_sha256
            inverted.append((claimed, outcome))
    return inverted


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
                problem = (f"{folder}: cannot write the artifact ({error.strerror or error}); "
                           f"make room or fix the folder's permissions, and run again")
                written.failed.append((claimed.photo, problem))
            else:
                written.done.append((claimed.photo, inversion))
    return written


def invert_waiting(model: Model, photos: list[Photo], output: Path, settings: InversionSettings = InversionSettings(),
                   batch_size: int | str = 1, force: bool = False, progress: bool = True,
                   keep_matching: bool = False) -> JobReport:
    """invert_photos, then, for the photos other runs were inverting, wait until each is free and
    take it up again (done by then, or failed there and tried here): no photo is left busy."""
    started = time.perf_counter()
    run = partial(invert_photos, model, settings=settings.for_model(model), batch_size=batch_size, force=force,
                  progress=progress, keep_matching=keep_matching)
    report = run(photos, output)
    waiting = report.busy
    while waiting:
        locks.wait_briefly()
        again = run(waiting, output)
        report.add(again, busy=False)
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
    save_png(to_pil(inversion.reconstruction), folder / "reconstruction.png",
             {**settings, **inversion.options, "metrics": inversion.metrics})
    save_inversion(inversion, folder)
