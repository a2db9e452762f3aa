"""`p2p-real sweep` (issue 14, part 3): a grid of edit strengths on one inversion, sampled several
settings a pass, scored, and one chosen; its files, its batching, and its refusals of bad input."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from p2p_real.cli import main
from p2p_real.editing.edit import edit
from p2p_real.editing.options import EditOptions
from p2p_real.eval.scores import MetricModels
from p2p_real.images import load_image
from p2p_real.pipeline import invert
from p2p_real.runs.sweep import SweepScoring, sweep
from p2p_real.runs.sweep_grid import SweepGrid

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
SOURCE = "a cup of coffee on a red saucer"
TARGET = "a cup of tea on a red saucer"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    output = tmp_path_factory.mktemp("inverted")
    argv = ["invert", str(DATA / "coffee.jpg"), "--prompt", SOURCE, "--output", str(output),
            "--model", "tiny-random", "--steps", "3", "--inner-steps", "1", "--quiet"]
    assert main(argv) == 0
    return output / "coffee"


def test_a_2x2_sweep_writes_its_pictures_table_and_an_entry_that_edit_runs(artifact, tmp_path, capsys):
    output = tmp_path / "sweep"
    argv = ["sweep", str(artifact), "--target", TARGET, "--cross", "0.8,0.2", "--self", "0.2,0.8",
            "--blend", "coffee", "tea", "--settings-per-pass", "2", "--metric-weights", "random",
            "--output", str(output), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith(f"swept 5 setting(s) of {artifact}")
    assert "(3 sampling pass(es)), 0 failed" in printed[-1]
    record = json.loads((output / "sweep.json").read_text())
    assert record["grid"] == {"cross_replace_steps": [0.2, 0.8], "self_replace_steps": [0.2, 0.8],
                              "blend_thresholds": [0.3]}
    rows = record["rows"]
    # the 2x2 grid, then PIE-Bench's 0.4 / 0.6, which the grid lacks
    assert [(row["cross_replace_steps"], row["self_replace_steps"], row["in_grid"]) for row in rows] == [
        (0.2, 0.2, True), (0.2, 0.8, True), (0.8, 0.2, True), (0.8, 0.8, True), (0.4, 0.6, False)]
    assert record["pie_bench"] == rows[4] and record["chosen"] in rows and record["chosen"]["pareto"]
    for row in rows:
        assert all(isinstance(row[key], float) for key in ("psnr_bg", "lpips_bg", "clip", "edit_score")), row
        picture = Image.open(output / row["image"])
        assert picture.text["parameters"].startswith(TARGET)
        assert f"Cross replace steps: {row['cross_replace_steps']}" in picture.text["parameters"]
        scores = json.loads((output / row["image"]).with_suffix(".json").read_text())["scores"]
        assert scores["edit_score"] == row["edit_score"]
    assert Image.open(output / "grid.png").size[0] >= 2 * 128 and Image.open(output / "plot.png").size[0] > 300
    for name in ("grid", "plot"):
        assert Image.open(output / f"{name}.png").text["parameters"].startswith(TARGET)
        assert json.loads((output / f"{name}.json").read_text())["chosen"] == record["chosen"]
    best = yaml.safe_load((output / "best.yaml").read_text())
    assert yaml.safe_load(record["edits_entry"]) == best and "\n".join(printed).count("cross_replace_steps:") == 1
    [entry] = best["edits"]
    chosen = record["chosen"]
    assert entry == {"artifact": str(artifact.resolve()), "target": TARGET,
                     "cross_replace_steps": chosen["cross_replace_steps"],
                     "self_replace_steps": chosen["self_replace_steps"], "blend": ["coffee", "tea"],
                     "blend_threshold": 0.3}
    # The entry is what `p2p-real edit` takes, and it makes the chosen setting's edit.
    assert f"p2p-real edit {output / 'best.yaml'} --model tiny-random --output EDITS" in "\n".join(printed)
    assert main(["edit", str(output / "best.yaml"), "--model", "tiny-random", "--output", str(tmp_path / "edits"),
                 "--quiet"]) == 0
    [made] = (tmp_path / "edits" / "coffee").glob("*/edited.json")
    settings = json.loads(made.read_text())
    assert (settings["cross_replace_steps"], settings["self_replace_steps"], settings["blend_threshold"]) == (
        chosen["cross_replace_steps"], chosen["self_replace_steps"], 0.3)
    edited = torch.from_numpy(np.array(Image.open(made.with_suffix(".png"))))
    swept = torch.from_numpy(np.array(Image.open(output / chosen["image"])))
    assert (edited.int() - swept.int()).abs().max() <= 2  # the same edit, in a batch of another size


def test_the_batched_sweep_equals_each_setting_edited_alone(tiny_model):
    [inversion] = invert(tiny_model, [load_image(DATA / "coffee.jpg", tiny_model.resolution)], [SOURCE], "ddim", 4)
    base = EditOptions(blend_words=("coffee", "tea"))
    grid = SweepGrid(cross=(0.25, 0.75), self_replace=(0.0, 0.5), thresholds=(0.2, 0.6))
    result = sweep(tiny_model, inversion, TARGET, base, grid, SweepScoring(MetricModels()), settings_per_pass=4)
    assert result.passes == 3 and len(result.settings) == 9 and not result.failed
    for setting, batched in zip(result.settings, result.edited):
        alone = edit(tiny_model, inversion, TARGET, setting.options(base))
        # Another batch size is another matmul blocking: float32 rounding (one level in a few pixels), nothing more;
        # the strengths themselves move the pictures by about a level on average.
        assert (alone.edited.int() - batched.int()).abs().max() <= 1, setting
        assert (alone.edited.float() - batched.float()).abs().mean() < 0.01, setting
        if setting.cross_replace_steps != result.settings[0].cross_replace_steps:
            assert (batched.float() - result.edited[0].float()).abs().mean() > 0.3, setting


@pytest.mark.parametrize("flags, needle", [
    (["--thresholds", "0.2,0.5"], "--thresholds: a LocalBlend threshold needs --blend SOURCE_WORD TARGET_WORD"),
    (["--cross", "0.2,1.5"], "--cross: 1.5 is not a fraction of the steps in [0, 1]"),
    (["--self", "-0.1"], "--self: -0.1 is not a fraction of the steps in [0, 1]"),
    (["--self", "0.2,,0.4"], "--self '0.2,,0.4': expected fractions in [0, 1] separated by commas"),
    (["--blend", "coffee", "tea", "--thresholds", "0.3,nan"], "--thresholds: nan is not a fraction"),
    (["--edit-tolerance", "2"],
     "--edit-tolerance: expected a fraction of the grid's range of edit scores in [0, 1], got 2.0"),
    (["--settings-per-pass", "0"], "--settings-per-pass: must be at least 1"),
    (["--gpus", "2"], "--gpus: a sweep runs on one GPU"),
])
def test_a_bad_grid_is_one_line_and_exit_2_before_anything_loads(flags, needle, tmp_path, capsys):
    argv = ["sweep", str(tmp_path), "--target", TARGET, *flags, "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("p2p-real: error: ") and needle in error and len(error.strip().splitlines()) == 1, error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source, flags, needle", [
    ("missing", ["--target", TARGET], "missing: no such file or folder"),
    ("empty", ["--target", TARGET], "empty"),  # a folder that holds no artifact
    ("artifact", [], "give --target"),
    ("artifact", ["--target", TARGET, "--metrics", "lpips"], "--metrics: the edit score is the target's CLIP score"),
    ("artifact", ["--target", "a red circle", "--model", "shapes"], "one-object captions"),
])
def test_a_missing_artifact_or_unscorable_sweep_is_one_line_and_exit_2(source, flags, needle, artifact, tmp_path,
                                                                       capsys):
    (tmp_path / "empty").mkdir()
    path = artifact if source == "artifact" else tmp_path / source
    assert main(["sweep", str(path), *flags, "--output", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("p2p-real: error: ") and needle in error and len(error.strip().splitlines()) == 1, error
