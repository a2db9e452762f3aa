"""`p2p-real edit`: one edit from the flags, or every edit of an edits file (a bad entry is reported
and skipped, exit 1). With no model named, an artifact folder is edited with its own, and an edits
file with the model its artifacts record (sweep's best.yaml) when they agree. A flag of one edit
given with an edits file, which sets each edit's own, is refused rather than ignored."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..artifacts import load_inversion, read_record
from ..errors import P2PError
from ..images import load_image
from .edit_flags import flags_set
from .edits import run_edits
from .edits_file import EDITS_FILES, EditJob, find_edits_file, read_edits_file
from .invert_command import EARLY_CHECK_SIZE
from .masks import read_mask
from .outcome import Outcome, Tally, nothing_to_run, share_work
from .report import RunReport
from .requests import EditRequest, ModelChoice


def run_edit(request: EditRequest) -> Outcome:
    source, model_choice = Path(request.source), request.model
    edits_file = find_edits_file(source)
    if edits_file is not None:
        check_no_edit_flags(request, edits_file)
        jobs, bad_entries = read_edits_file(edits_file)
        model_choice = recorded_model(model_choice, artifacts_model(jobs, edits_file))
    else:
        model_choice = recorded_model(model_choice, check_edit_source(source, request.target, request.prompt))
        mask = None if request.mask is None else read_mask(request.mask)  # a bad mask fails before the model loads
        jobs = [EditJob(source, request.target, request.options, request.prompt, request.name or "",
                        None if mask is None else mask.path, mask)]
        bad_entries = []
    if not jobs:
        return nothing_to_run(bad_entries)
    share = share_work(jobs, lambda job: str(job.source), request.progress)  # a photo's edits stay on one rank
    report = RunReport() if not share.items else run_edits(
        model_choice.load(share.ranks), share.items, request.output, request.steps, request.force, request.maps,
        share.progress, request.batch_size)
    single = edits_file is None
    if single and report.failed:
        raise P2PError(report.failed[0][1])
    done = [f"edited {job.source} -> {folder}/edited.png (grid.png{', maps.png' if request.maps else ''})"
            for job, folder in (report.done if single else [])]
    failures = [f"the edit {job.target!r} of {job.source}" for job, _ in report.failed]
    tallies = share.ranks.gather(Tally.of(report, failures))
    if tallies is None:
        return Outcome(code=1 if report.failed or bad_entries else 0)
    total = Tally.merged(tallies)
    skipped = f", {len(bad_entries)} bad entr{'y' if len(bad_entries) == 1 else 'ies'} skipped" if bad_entries else ""
    return Outcome(
        code=1 if total.failed or bad_entries else 0,
        lines=[*done, f"{total.done} edit(s) in {total.counts(tallies)}{skipped} -> {request.output}"],
        problems=[*(f"skipped {problem}" for problem in bad_entries),
                  *(f"skipped {failure}: {message}" for failure, message in total.failed)],
    )


def recorded_model(choice: ModelChoice, recorded: str | None) -> ModelChoice:
    """With no model named, an artifact folder's own model."""
    return replace(choice, name_or_path=recorded) if choice.name_or_path is None and recorded else choice


def check_edit_source(source: Path, target: str | None, prompt: str | None) -> str | None:
    """One edit's source, checked before the model loads: an artifact folder (its model's name is
    returned), or a photo with its caption."""
    if not target:
        raise P2PError(f"{source}: give --target \"the edited caption\" (or pass a folder or file of edits: "
                       f"{', '.join(EDITS_FILES)})")
    if source.is_dir():
        return load_inversion(source).model_name  # a damaged artifact fails before the model loads
    if not source.is_file():
        raise P2PError(f"{source}: no such artifact folder, photo or edits file")
    if not prompt:
        raise P2PError(f"{source}: a photo needs --prompt with its caption (or pass an artifact folder)")
    load_image(source, EARLY_CHECK_SIZE)
    return None


def check_no_edit_flags(request: EditRequest, edits_file: Path) -> None:
    """Refuse the flags of one edit with an edits file, whose entries set their own: never ignored."""
    one_edit = [flag for flag, value in (("--target", request.target), ("--name", request.name),
                                         ("--prompt", request.prompt), ("--mask", request.mask)) if value is not None]
    given = one_edit + flags_set(request.options, "edit")
    if given:
        raise P2PError(f"{given[0]}: {edits_file} lists its edits, each with its own settings, so {given[0]} would be "
                       f"ignored; set it in the file's entries, or pass one artifact folder or photo with it")


def artifacts_model(jobs: list[EditJob], edits_file: Path) -> str | None:
    """The model the edits file's artifact folders were inverted with, when they agree (None: no artifacts)."""
    models = set()
    for job in jobs:
        if job.source.is_dir():
            try:
                models.add((read_record(job.source) or {}).get("model_name"))
            except P2PError:
                pass  # a damaged artifact fails its own edits, later
    models.discard(None)
    if len(models) > 1:
        raise P2PError(f"--model: the artifacts {edits_file} edits were made with {len(models)} models "
                       f"({', '.join(sorted(models))}); pass --model, or split the file by model")
    return models.pop() if models else None
