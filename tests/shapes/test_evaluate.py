"""The shapes evaluation (issue 6) end to end on an untrained shapes model: its numbers mean nothing,
so these tests check the plumbing: keys, ranges, batching and the edits' construction."""
import json
import math

import numpy as np
import pytest
import torch

from p2p_real.inversion.options import NullTextOptions
from p2p_real.loading import load_model
from p2p_real.pipeline import invert
from p2p_real.shapes.evaluate import main
from p2p_real.shapes.p2p_checks import MIN_SWAP_DISTANCE, swap_colour
from p2p_real.shapes.pixels import PSNR_CAP, background_psnr, rgb_distance
from p2p_real.shapes.reweight_checks import reweight_sweep
from p2p_real.shapes.scenes import COLOURS, scene_at
from p2p_real.shapes.text_following import text_following
from p2p_real.shapes.train import Run, export

STEPS = 3
SCENES = 2


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """An untrained model of the shapes architecture, exported as `--model` reads it."""
    root = tmp_path_factory.mktemp("shapes")
    return export(Run(root / "empty-run", "cpu"), root / "model")


@pytest.fixture(scope="module")
def model(folder):
    return load_model(str(folder), device="cpu")


@pytest.fixture(scope="module")
def report(folder, tmp_path_factory):
    output = tmp_path_factory.mktemp("evaluation")
    argv = ["--model", str(folder), "--output", str(output), "--scenes", str(SCENES), "--steps", str(STEPS),
            "--inner-steps", "2", "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    return json.loads((output / "shapes_eval.json").read_text()), output


def test_the_command_writes_settings_timings_results_and_figures(report):
    data, output = report
    assert data["settings"]["scenes"] == SCENES and data["settings"]["seed"] == 1000
    assert data["settings"]["null_text_options"]["num_inner_steps"] == 2
    assert data["device"] == "CPU" and data["model"]["resolution"] == 64
    assert set(data["seconds"]) == set(data["results"]) == {"text", "reconstruct", "p2p"}
    assert all(seconds > 0 for seconds in data["seconds"].values())
    for name in data["figures"]:
        assert (output / name).stat().st_size > 0
    assert {"text_following.png", "reconstruction.png", "p2p.png", "reweight.png"} <= set(data["figures"])
    for part in data["results"].values():
        assert len(part["scenes"]) == SCENES and part["summary"]["count"] == SCENES


def test_rates_are_rates_and_psnrs_are_finite(report):
    results = report[0]["results"]
    text = results["text"]["summary"]
    assert all(0 <= text[key] <= 1 for key in ("colour", "shape", "both"))
    reconstruction = results["reconstruct"]["summary"]
    for name in ("vae", "ddim", "null-text"):
        assert math.isfinite(reconstruction[name]["psnr"]) and -1 <= reconstruction[name]["ssim"] <= 1
    p2p = results["p2p"]["summary"]
    for check in ("colour_swap", "local_blend", "shape_swap"):
        assert 0 <= p2p[check]["success"] <= 1
        assert 0 < p2p[check]["background_psnr_reconstruction"] <= PSNR_CAP
        assert 0 < p2p[check]["background_psnr_source"] <= PSNR_CAP
    assert 0 <= p2p["local_blend"]["at_least_plain"] <= 1
    for word in ("colour", "size"):
        sweep = p2p["reweight"][word]
        assert len(sweep["mean_area"]) == len(p2p["reweight"]["factors"])
        assert all(0 <= value <= 1 for value in sweep["mean_saturation"])
    row = results["p2p"]["scenes"][0]
    assert row["colour_swap"]["target"] == row["local_blend"]["target"] != scene_at(1000, 0, 64, 1).objects[0].colour


def test_generated_pictures_do_not_depend_on_the_batch_size(model):
    together = text_following(model, 3, steps=2, batch_size=3)
    apart = text_following(model, 3, steps=2, batch_size=2)
    assert [row["caption"] for row in together.rows] == [row["caption"] for row in apart.rows]
    # Each caption gets the same noise; batched arithmetic may still move a pixel by a level or two.
    difference = np.abs(np.asarray(together.figures["text_following"], dtype=int)
                        - np.asarray(apart.figures["text_following"], dtype=int))
    assert (difference <= 2).mean() > 0.99


def test_a_reweight_of_one_is_the_source_branch(model):
    scene = scene_at(1000, 0, 64, max_objects=1)
    [inversion] = invert(model, [scene.image], [scene.caption], "null-text", STEPS,
                         options=NullTextOptions(num_inner_steps=1))
    colour = scene.objects[0].colour
    source, pictures = reweight_sweep(model, inversion, [{colour: 1.0}, {colour: 2.0}])
    # Equal up to rounding: rows of one batch with equal inputs may still round differently on the CPU.
    assert (pictures[0].int() - source.int()).abs().max() <= 2
    assert (pictures[1].int() - source.int()).abs().max() > 2  # a real factor does change the picture


def test_swap_colours_are_far_from_the_object_and_the_background():
    for source in COLOURS:
        for background in COLOURS:
            if source != background:
                choices = {swap_colour(source, background, choice) for choice in range(6)}
                assert len(choices) >= 2
                for colour in choices:
                    assert rgb_distance(COLOURS[colour], COLOURS[source]) >= MIN_SWAP_DISTANCE
                    assert rgb_distance(COLOURS[colour], COLOURS[background]) >= MIN_SWAP_DISTANCE


def test_background_psnr_ignores_the_edited_region():
    picture = torch.zeros(8, 8, 3, dtype=torch.uint8)
    changed = picture.clone()
    changed[2:4, 2:4] = 255
    region = np.zeros((8, 8), dtype=bool)
    region[2:4, 2:4] = True
    assert background_psnr(changed, picture, region) == PSNR_CAP
    assert background_psnr(changed, picture, np.zeros((8, 8), dtype=bool)) < 20


@pytest.mark.parametrize("arguments", [["--seed", "0"], ["--parts", "text,paint"]])
def test_bad_arguments_are_refused(arguments, tmp_path):
    with pytest.raises(SystemExit):
        main(["--model", "tiny-random", "--output", str(tmp_path), *arguments])
