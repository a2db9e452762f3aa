"""`p2p-real invert`: photos and folders of photos into OUTPUT/<photo>/; under a launcher, each rank
inverts its share (runs/ranks.py) and rank 0 reports for all."""
from __future__ import annotations

import os

from ..errors import P2PError
from ..images import load_image
from ..inversion.methods import METHODS
from .compile_cache import mark_warm
from .invert import InversionSettings, invert_photos
from .outcome import Outcome, Tally, share_work
from .photos import find_photos
from .report import RunReport
from .requests import InvertRequest

# A photo named alone is decoded before the model loads, so that a bad file is bad input (exit 2)
# within a second; decoding at any size proves it readable, and a small one keeps that cheap.
EARLY_CHECK_SIZE = 64


def run_invert(request: InvertRequest) -> Outcome:
    photos = find_photos(list(request.inputs), request.prompt)
    single = len(photos) == 1 and len(request.inputs) == 1 and os.path.isfile(request.inputs[0])
    if single and photos[0].problem:
        raise P2PError(photos[0].problem)
    if single and not photos[0].caption:
        raise P2PError(f"{photos[0].path}: no caption; pass --prompt \"what the photo shows\"")
    if single:
        load_image(photos[0].path, EARLY_CHECK_SIZE)
    share = share_work(photos, lambda photo: str(photo.path), request.progress)
    model = request.model.load(share.ranks, len(share.items)) if share.items else None
    settings = InversionSettings(request.method, request.steps, request.guidance, request.null_text)
    report = RunReport() if model is None else invert_photos(
        model, share.items, request.output, settings, request.batch_size, request.force, share.progress)
    if model is not None and model.runner.compiled and report.done and METHODS[request.method].needs_backward:
        try:
            mark_warm(model)  # later runs over a folder compile by default
        except OSError:
            pass  # an unwritable cache folder costs later runs their default compilation, not this run its result
    if single and report.failed:
        raise P2PError(report.failed[0][1])
    tallies = share.ranks.gather(Tally.of(report, [str(photo.path) for photo, _ in report.failed],
                                          [inversion.metrics["psnr"] for _, inversion in report.done],
                                          missed_names(report.done)))
    if tallies is None:  # rank 0 speaks for all
        return Outcome(code=1 if report.failed else 0)
    total = Tally.merged(tallies)
    quality = f"; mean reconstruction PSNR {sum(total.psnrs) / len(total.psnrs):.2f} dB" if total.psnrs else ""
    return Outcome(
        code=1 if total.failed else 0,
        lines=[f"inverted {total.done} photo(s) in {total.counts(tallies)}{quality} -> {request.output}",
               *convergence_lines(total.missed)],
        problems=[f"skipped {path}: {message}" for path, message in total.failed],
    )


def missed_names(done) -> list[str]:
    """Null-text photos whose loss stayed above the early-stop threshold at some timesteps, as
    "name (missed/steps)": the non-convergence users of the reference code meet, named."""
    missed = []
    for photo, inversion in done:
        reached = inversion.diagnostics.get("reached_threshold", [])
        if not all(reached):
            missed.append(f"{photo.name} ({len(reached) - sum(reached)}/{len(reached)})")
    return missed


def convergence_lines(missed: list[str]) -> list[str]:
    if not missed:
        return []
    return [f"null-text stayed above the early-stop loss at some timesteps (see diagnostics in inversion.json): "
            f"{', '.join(missed)}; more --inner-steps may help"]
