"""Inversion on tiny-sd3-random through the same loops and methods table as SD v1 and SDXL: Euler
inversion (the flow schedule's step run upwards), null-text on the 334-row embedding (tokens and
pooled), negative-prompt and Direct Inversion; the artifact records the flow schedule.

Each method runs once per module, at 3 steps (float32): about 15 s on 2 busy CPU cores."""
import pytest
import torch

from p2p_real.artifacts import load_inversion, save_inversion
from p2p_real.defaults import INVERSION_METHODS
from p2p_real.images import load_image, to_tensor
from p2p_real.inversion.ddim import ddim_invert
from p2p_real.inversion.options import NullTextOptions
from p2p_real.pipeline import invert
from p2p_real.sampling import ddim_sample

SOURCE = "a close-up photo of a tabby cat"
STEPS = 3
# The tiny model's 96-wide text path steers it less than SD3's 4096-wide one: a larger rate, fewer steps.
TINY_OPTIONS = NullTextOptions(learning_rate=0.1, num_inner_steps=4)


@pytest.fixture(scope="module")
def photo(tiny_sd3_model):
    return load_image("data/photos/chelsea.jpg", tiny_sd3_model.resolution)


@pytest.fixture(scope="module")
def inversions(tiny_sd3_model, photo):
    results = {}
    for method in INVERSION_METHODS:
        [results[method]] = invert(tiny_sd3_model, [photo], [SOURCE], method=method, num_steps=STEPS,
                                   guidance_scale=7.0, options=TINY_OPTIONS)
    return results


def test_euler_inversion_then_sampling_reconstructs_better_with_more_steps(tiny_sd3_model, photo):
    model = tiny_sd3_model
    latents = model.encode(to_tensor([photo]))
    conditional = model.embed([SOURCE])
    errors = {}
    for steps in (3, 12):
        schedule = model.schedule(steps)
        trajectory = ddim_invert(model.denoise, latents, conditional, schedule)
        assert trajectory.shape == (steps + 1, 1, 4, 16, 16)
        back = ddim_sample(model.denoise, trajectory[-1], schedule, conditional,
                           conditional.expand(steps, -1, -1, -1), 1.0)  # guidance 1: the velocity inversion used
        errors[steps] = float((back - latents).norm() / latents.norm())
    # Euler's error per step is O(h^2), so the round trip's is O(1/steps): 4x the steps, about 4x less
    assert errors[12] < errors[3] / 2.5 and errors[12] < 0.15, errors


def test_null_text_and_the_other_methods_beat_plain_inversion(inversions):
    error = {method: inversion.metrics["latent_mse"] for method, inversion in inversions.items()}
    assert error["null-text"] < error["ddim"] / 3, error
    assert error["negative-prompt"] < error["ddim"], error
    assert error["direct"] < 1e-10, error  # its offsets put each step back on the inversion's path
    reached = inversions["null-text"].diagnostics["inner_steps"]
    assert len(reached) == STEPS and all(0 < count <= TINY_OPTIONS.num_inner_steps for count in reached)


def test_null_text_optimises_the_pooled_row_too(tiny_sd3_model, inversions):
    optimised = inversions["null-text"].null_text_embeddings  # (steps, 334, 96)
    empty = tiny_sd3_model.empty_prompt(1)[0]
    width = tiny_sd3_model.text.pooled_width
    assert optimised.shape == (STEPS, 334, 96)
    assert (optimised[:, -1, :width] - empty[-1, :width]).abs().amax(dim=-1).min() > 1e-3  # pooled moved each step
    assert (optimised[:, :-1] - empty[:-1]).abs().amax() > 1e-3  # so did the 333 token rows
    assert optimised[:, -1, width:].abs().max() == 0  # the padding never reaches the transformer: no gradient
    assert inversions["null-text"].options["optimised_embedding"] == "tokens and pooled"


def test_the_artifact_records_the_flow_schedule(tiny_sd3_model, inversions, tmp_path):
    inversion = inversions["null-text"]
    save_inversion(inversion, tmp_path / "cat")
    loaded = load_inversion(tmp_path / "cat", tiny_sd3_model)
    schedule = tiny_sd3_model.schedule(STEPS)
    assert loaded.schedule == {"kind": "flow-match-euler", "timesteps": schedule.timesteps.tolist(),
                               "sigmas": list(schedule.sigmas)}
    assert loaded.scheduler_config["shift"] == 3.0 and loaded.guidance_scale == 7.0
    torch.testing.assert_close(loaded.null_text_embeddings, inversion.null_text_embeddings)
