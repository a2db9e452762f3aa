"""Prompt-to-Prompt on tiny-sd3-random through the model's seams (`edit`, `sample_plan`, the family's
control in editing/control.py), in float64 on a 3-step inversion: the invariants of the UNet families,
end to end (the processors' own tests, at the transformer level: tests/sd3_attention/)."""
from dataclasses import replace

import pytest
import torch
from sampling_helpers import run_plan

from p2p_real.editing.edit import edit
from p2p_real.editing.options import EditOptions
from p2p_real.images import load_image
from p2p_real.joint_attention import JointAttention
from p2p_real.pipeline import invert
from p2p_real.sampling import ddim_sample

SOURCE = "a close-up photo of a tabby cat"
DOG = "a close-up photo of a tabby dog"
FLUFFY = "a close-up photo of a fluffy tabby cat"
STEPS = 3


@pytest.fixture(scope="module")
def inversion(tiny_sd3_float64):
    photo = load_image("data/photos/chelsea.jpg", tiny_sd3_float64.resolution)
    [result] = invert(tiny_sd3_float64, [photo], [SOURCE], method="ddim", num_steps=STEPS)
    # the artifact keeps float32; the comparisons here run in float64 throughout
    return replace(result, noise_latents=result.noise_latents.double(),
                   null_text_embeddings=result.null_text_embeddings.double())


def plain(model, inversion, prompt):
    return ddim_sample(model.denoise, inversion.noise_latents[None], model.schedule(STEPS),
                       model.embed([prompt]), inversion.null_text_embeddings[:, None],
                       inversion.guidance_scale)[0]


def test_the_model_runs_our_joint_processor_and_edits_install_and_leave(tiny_sd3_float64, inversion):
    model = tiny_sd3_float64
    assert all(type(processor) is JointAttention for processor in model.denoiser.attn_processors.values())
    result = edit(model, inversion, DOG)
    assert result.kind == "replace" and (result.edited.float() - result.reconstruction.float()).abs().mean() > 1
    assert result.cross_maps.shape[-1] == 333  # the T2I slice: 77 CLIP + 256 T5 keys
    assert all(type(processor) is JointAttention for processor in model.denoiser.attn_processors.values())


def test_a_target_equal_to_the_source_reproduces_the_reconstruction(tiny_sd3_float64, inversion):
    sampled = run_plan(tiny_sd3_float64, inversion, SOURCE, EditOptions(kind="replace"))
    reconstruction = plain(tiny_sd3_float64, inversion, SOURCE)
    torch.testing.assert_close(sampled.latents[0], reconstruction, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(sampled.latents[1], reconstruction, rtol=1e-10, atol=1e-10)


def test_reweight_one_is_the_identity(tiny_sd3_float64, inversion):
    sampled = run_plan(tiny_sd3_float64, inversion, SOURCE, EditOptions(reweights={"tabby": 1.0}))
    torch.testing.assert_close(sampled.latents[1], sampled.latents[0], rtol=1e-10, atol=1e-10)
    stronger = run_plan(tiny_sd3_float64, inversion, SOURCE, EditOptions(reweights={"tabby": 2.0}))
    assert (stronger.latents[1] - stronger.latents[0]).abs().max() > 1e-4  # and a weight of 2 is not


def test_local_blend_keeps_the_latents_outside_its_mask(tiny_sd3_float64, inversion):
    # random attention on an 8x8 grid is nearly flat after LocalBlend's max-pool: a high threshold
    # (as tests/sdxl/) leaves a proper part of the grid (0.47 of it here, observed)
    options = EditOptions(blend_words=("cat", "dog"), blend_threshold=0.9)
    sampled = run_plan(tiny_sd3_float64, inversion, DOG, options)
    mask = sampled.masks[0]  # (1, h, w) on the latent grid
    assert 0 < mask.mean() < 1, float(mask.mean())
    outside = (mask == 0).expand_as(sampled.latents[0])
    assert torch.equal(sampled.latents[1][outside], sampled.latents[0][outside])
    assert (sampled.latents[1] - sampled.latents[0])[~outside].abs().max() > 1e-4


def test_many_targets_in_one_pass_equal_each_alone(tiny_sd3_float64, inversion):
    options = [EditOptions(), EditOptions(reweights={"fluffy": 2.0})]
    together = run_plan(tiny_sd3_float64, inversion, [DOG, FLUFFY], options)
    for row, (target, option) in enumerate(zip([DOG, FLUFFY], options)):
        alone = run_plan(tiny_sd3_float64, inversion, target, option)
        torch.testing.assert_close(together.latents[row + 1], alone.latents[1], rtol=1e-9, atol=1e-9)
