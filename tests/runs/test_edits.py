import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from p2p_real.artifacts import load_inversion
from p2p_real.cli import main
from p2p_real.editing.edit import edit
from p2p_real.editing.options import EditOptions
from p2p_real.runs import edits as edits_module
from p2p_real.runs.edits import run_edits
from p2p_real.runs.edits_file import EditJob, find_edits_file
from p2p_real.runs.invert import InversionSettings, invert_photos
from p2p_real.runs.photos import Photo

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
SOURCE = "a close-up photo of a tabby cat"
TARGETS = ["a close-up photo of a tabby dog", "a close-up photo of a fluffy tabby cat", SOURCE]
OPTIONS = [EditOptions(blend_words=("cat", "dog")), EditOptions(), EditOptions(reweights={"tabby": 2.0})]


def test_an_edits_file_runs_many_edits_resumably(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(DATA / name, folder)
    (folder / "edits.yaml").write_text(
        "edits:\n"
        "  - {photo: chelsea.jpg, prompt: a tabby cat on a floor, target: a tabby dog on a floor,"
        " blend: [cat, dog]}\n"
        "  - {photo: chelsea.jpg, prompt: a tabby cat on a floor, target: a fluffy tabby cat on a floor,"
        " name: fluffy}\n"
        "  - {photo: coffee.jpg, prompt: a cup of coffee, target: a cup of tea,"
        " cross_replace_steps: {default_: 0.4, tea: [0, 0.8]}}\n"
        "  - {photo: coffee.jpg, prompt: a cup of coffee, target: a cup of tea, blend: [coffee, horse], name: broken}\n"
    )
    argv = ["edit", str(folder), "--output", str(tmp_path / "out"), "--steps", "3", "--model", "tiny-random", "--quiet"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "3 edit(s)" in captured.out and "1 failed" in captured.out and "'horse' is not in the prompt" in captured.err
    for done in ("chelsea/a-tabby-dog-on-a-floor-*", "chelsea/fluffy", "coffee/a-cup-of-tea-*"):
        [edit_folder] = (tmp_path / "out").glob(done)  # a slug and a hash of the settings, or the name given
        assert (edit_folder / "edited.png").is_file()
    assert load_inversion(tmp_path / "out" / "chelsea").prompt == "a tabby cat on a floor"
    stamp = (tmp_path / "out" / "chelsea" / "fluffy" / "edited.png").stat().st_mtime_ns
    assert main(argv) == 1
    assert "0 edit(s)" in capsys.readouterr().out  # done edits are skipped; the broken one fails again
    assert (tmp_path / "out" / "chelsea" / "fluffy" / "edited.png").stat().st_mtime_ns == stamp
    (folder / "edits.yaml").write_text(
        "edits:\n"
        "  - {photo: chelsea.jpg, prompt: a tabby cat on a floor, target: a fluffy tabby cat on a floor, name: fluffy,"
        " self_replace_steps: 0.2}\n"
    )
    assert main(argv) == 1  # other settings into a folder the user named: refused, never replaced unasked
    captured = capsys.readouterr()
    assert "0 edit(s)" in captured.out
    assert "fluffy holds an edit made with self_replace_steps 0.6, not 0.2; pass --force" in captured.err
    assert (tmp_path / "out" / "chelsea" / "fluffy" / "edited.png").stat().st_mtime_ns == stamp
    assert main([*argv, "--force"]) == 0
    assert "1 edit(s)" in capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "chelsea" / "fluffy" / "edited.json").read_text())
    assert record["self_replace_steps"] == 0.2
    (folder / "edits.yaml").write_text("edits:\n  - {photo: chelsea.jpg, target: x, colour: red}\n")
    assert main(argv) == 2
    assert "edit 1: unknown field(s) colour" in capsys.readouterr().err


@pytest.fixture(scope="module")
def artifact(tiny_model, tmp_path_factory):
    output = tmp_path_factory.mktemp("artifacts")
    report = invert_photos(tiny_model, [Photo(DATA / "chelsea.jpg", SOURCE, "chelsea")], output,
                           InversionSettings("ddim", 3), progress=False)
    assert not report.failed
    return output / "chelsea"


@pytest.fixture
def passes(monkeypatch):
    """The number of targets of each call of edit() that run_edits makes."""
    calls = []

    def counted(model, inversion, targets, options, mask=None, progress=False):
        calls.append(len(targets))
        return edit(model, inversion, targets, options, mask, progress=progress)

    monkeypatch.setattr(edits_module, "edit", counted)
    return calls


def test_the_edits_of_one_photo_share_one_sampling_pass(tiny_model, artifact, tmp_path, passes):
    jobs = [EditJob(artifact, target, options) for target, options in zip(TARGETS, OPTIONS)]
    report = run_edits(tiny_model, jobs, tmp_path, progress=False)
    assert passes == [3] and not report.failed and [job for job, _ in report.done] == jobs
    inversion = load_inversion(artifact, tiny_model)
    for job, folder in report.done:
        alone = edit(tiny_model, inversion, job.target, job.options)  # one pass per edit: an independent run
        written = torch.from_numpy(np.array(Image.open(folder / "edited.png").convert("RGB")))
        # A batch of 4 prompts is another matmul blocking than a batch of 2: float32 rounding only.
        assert (alone.edited.int() - written.int()).abs().max() <= 2
    again = run_edits(tiny_model, jobs, tmp_path, progress=False)
    assert passes == [3] and again.skipped == jobs and not again.done


def test_passes_hold_at_most_max_targets_and_a_bad_edit_fails_alone(tiny_model, artifact, tmp_path, passes,
                                                                     monkeypatch):
    monkeypatch.setattr(edits_module, "MAX_TARGETS_PER_PASS", 2)
    broken = EditJob(artifact, "a close-up photo of a tabby horse", EditOptions(blend_words=("cat", "unicorn")),
                     name="broken")
    jobs = [EditJob(artifact, target, options) for target, options in zip(TARGETS, OPTIONS)] + [broken]
    report = run_edits(tiny_model, jobs, tmp_path, progress=False)
    # Passes of two: the first two edits together, then the broken one's pass fails and each is tried alone.
    assert passes == [2, 2, 1, 1]
    assert [job for job, _ in report.done] == jobs[:3]
    assert report.failed == [(broken, report.failed[0][1])] and "'unicorn' is not in the prompt" in report.failed[0][1]
    assert not (tmp_path / "chelsea" / "broken").exists()


def test_find_edits_file(tmp_path):
    assert find_edits_file(tmp_path) is None
    (tmp_path / "edits.json").write_text("[]")
    assert find_edits_file(tmp_path) == tmp_path / "edits.json"
    (tmp_path / "edits.yaml").write_text("[]")
    assert find_edits_file(tmp_path) == tmp_path / "edits.yaml"  # YAML first, as listed in EDITS_FILES
    assert find_edits_file(tmp_path / "edits.json") == tmp_path / "edits.json"
    (tmp_path / "photo.jpg").write_bytes(b"")
    assert find_edits_file(tmp_path / "photo.jpg") is None and find_edits_file(tmp_path / "missing") is None

