"""The SDXL adapter against diffusers' own SDXL code, on the tiny random-weight SDXL model (float32, CPU).

The reference side is diffusers' `StableDiffusionXLPipeline` (its `encode_prompt`, its denoising
loop with a `DDIMScheduler`) and `DDIMInverseScheduler`, built from the model's own parts. Its UNet
is a copy of the model's running diffusers' `AttnProcessor2_0`, so nothing of p2p_real (not even
`FusedAttention`) is on that side. Each numerical comparison comes with a negative control: a wrong
time id or a zeroed pooled row moves the result by orders of magnitude more than the tolerance.
"""
import copy
import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMInverseScheduler, DDIMScheduler, StableDiffusionXLPipeline
from diffusers.models.attention_processor import AttnProcessor2_0

from p2p_real.inversion.ddim import ddim_invert
from p2p_real.inversion.methods import plain
from p2p_real.loading import load_model
from p2p_real.random_models import tiny_sdxl_random
from p2p_real.sampling import ddim_sample

PROMPTS = ["a cat sitting on a mat", "a red car"]
TOKENS = 77  # CLIP's context: the 78th row of our embedding is the pooled one
STEPS = 5
GUIDANCE = 7.5
CPU = torch.device("cpu")
# float32 on the CPU, the same arithmetic in another order (batched differently, another attention
# processor): observed max |difference| ~1e-5 on latents of magnitude ~20, so 1e-4 relative and
# absolute leaves margin. The controls below move the latents by ~1 (wrong time ids) to ~5 (pooled).
TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


def pipeline_of(model, force_zeros_for_empty_prompt: bool = True) -> StableDiffusionXLPipeline:
    unet = copy.deepcopy(model.unet)
    unet.set_attn_processor(AttnProcessor2_0())  # diffusers' own attention on the reference side
    pipe = StableDiffusionXLPipeline(
        vae=model.vae, text_encoder=model.text.encoder, text_encoder_2=model.text.encoder_2,
        tokenizer=model.text.tokenizer, tokenizer_2=model.text.tokenizer_2, unet=unet,
        scheduler=DDIMScheduler.from_config(model.scheduler_config),
        force_zeros_for_empty_prompt=force_zeros_for_empty_prompt, add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe(tiny_sdxl_model):
    return pipeline_of(tiny_sdxl_model)


def tokens_and_pooled(model, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Our (B, 78, D) tensor -> diffusers' prompt_embeds (B, 77, D) and pooled_prompt_embeds (B, P)."""
    return embeddings[:, :TOKENS], embeddings[:, TOKENS, : model.text.encoder_2.config.projection_dim]


def sdxl_time_ids(height: int, width: int, batch: int) -> torch.Tensor:
    """SDXL's size conditioning for an uncropped image: original size, crop top-left, target size."""
    return torch.tensor([[height, width, 0, 0, height, width]], dtype=torch.float32).repeat(batch, 1)


def largest(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# 1. The embedding layout is diffusers' encode_prompt's.

def test_embedding_layout_is_diffusers_encode_prompt(tiny_sdxl_model, pipe):
    model = tiny_sdxl_model
    prompt_embeds, negative_embeds, pooled, negative_pooled = pipe.encode_prompt(
        PROMPTS, device=CPU, num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt=None)
    ours = model.embed(PROMPTS)
    width = model.text.encoder.config.hidden_size + model.text.encoder_2.config.hidden_size
    assert ours.shape == (2, TOKENS + 1, width) == (2, 78, 64) and pooled.shape == (2, 32)
    tokens, our_pooled = tokens_and_pooled(model, ours)
    # The same modules on the same token ids: equal to the bit (observed: 0.0).
    assert torch.equal(tokens, prompt_embeds)
    assert torch.equal(our_pooled, pooled)
    assert torch.equal(ours[:, TOKENS, 32:], torch.zeros(2, width - 32))  # the pooled row's padding
    # A different pooled vector per prompt, and not the first encoder's: the row carries information.
    assert largest(pooled[0], pooled[1]) > 1e-2

    # An absent negative prompt with force_zeros_for_empty_prompt: all zeros, tokens and pooled.
    assert negative_embeds.shape == (2, TOKENS, width) and negative_pooled.shape == (2, 32)
    assert not negative_embeds.any() and not negative_pooled.any()
    assert torch.equal(model.empty_prompt(2),
                       torch.cat([negative_embeds, F.pad(negative_pooled, (0, width - 32))[:, None]], 1))


def test_null_prompt_without_force_zeros_is_the_empty_string_encoded(tiny_sdxl_model):
    # force_zeros_for_empty_prompt false (and, in diffusers, any explicit negative prompt such as ""):
    # the negative embeddings are the encoders' outputs for "".
    model = tiny_sdxl_model
    pipe = pipeline_of(model, force_zeros_for_empty_prompt=False)
    _, negative_embeds, _, negative_pooled = pipe.encode_prompt(
        PROMPTS, device=CPU, num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt=None)
    text = dataclasses.replace(model.text, zeros_for_empty_prompt=False)
    empty = text.empty(2, CPU, lambda prompts: text.embed(prompts, CPU))
    tokens, pooled = tokens_and_pooled(model, empty)
    assert torch.equal(tokens, negative_embeds) and torch.equal(pooled, negative_pooled)
    assert negative_embeds.abs().max() > 0.1 and negative_pooled.abs().max() > 0.1  # not the zeros


# 2. Guided DDIM sampling equals diffusers' SDXL pipeline with a DDIMScheduler.

def test_guided_sampling_equals_diffusers_sdxl_pipeline(tiny_sdxl_model, pipe, generator):
    model = tiny_sdxl_model
    latents = torch.randn(2, 4, 16, 16, generator=generator)
    conditional = model.embed(PROMPTS)
    unconditional = model.empty_prompt(2)  # plain null embedding: zeros, as the pipeline's own
    schedule = model.schedule(STEPS)
    assert pipe.scheduler.init_noise_sigma == 1.0  # the pipeline scales the initial latents by it

    ours_steps = []

    def record(index, step_latents):
        ours_steps.append(step_latents.clone())
        return step_latents

    # `plain` (the `ddim` method) prescribes exactly these arguments, so `reconstruct` runs this same loop.
    result = plain(model.denoise, None, conditional, unconditional, schedule, GUIDANCE, None)
    assert result.latent_offsets is None
    ours = ddim_sample(model.denoise, latents, schedule, conditional, result.null_text_embeddings, GUIDANCE,
                       after_step=record)
    assert torch.equal(result.null_text_embeddings, unconditional.expand(STEPS, -1, -1, -1))

    def sample(conditional=conditional, only_first_step=False, **options) -> tuple[torch.Tensor, list[torch.Tensor]]:
        prompt_embeds, pooled = tokens_and_pooled(model, conditional)
        negative_embeds, negative_pooled = tokens_and_pooled(model, unconditional)
        steps = []

        def capture(pipeline, index, timestep, tensors):
            steps.append(tensors["latents"].clone())
            pipeline._interrupt = only_first_step  # diffusers' documented way to stop the loop early
            return {}

        final = pipe(prompt_embeds=prompt_embeds, pooled_prompt_embeds=pooled,
                     negative_prompt_embeds=negative_embeds, negative_pooled_prompt_embeds=negative_pooled,
                     guidance_scale=GUIDANCE, guidance_rescale=0.0, eta=0.0, num_inference_steps=STEPS,
                     height=model.resolution, width=model.resolution, latents=latents.clone(),
                     output_type="latent", callback_on_step_end=capture, **options).images  # scaled latents
        return final, steps

    theirs, their_steps = sample()
    assert pipe.scheduler.timesteps.tolist() == schedule.timesteps.tolist() == [801, 601, 401, 201, 1]
    assert len(their_steps) == len(ours_steps) == STEPS
    for index, (mine, reference) in enumerate(zip(ours_steps, their_steps)):
        torch.testing.assert_close(mine, reference, **TOLERANCE, msg=lambda m, index=index: f"step {index}: {m}")
    torch.testing.assert_close(ours, theirs, **TOLERANCE)  # observed max |difference| ~1e-5
    assert largest(ours, latents) > 1.0  # it sampled: the result is not the initial noise

    # Negative controls: what a broken adapter would feed the UNet is far outside the tolerance, after
    # one step already (over all 5 steps: ~1.0 and ~4.7). One step each keeps the test fast.
    half = model.resolution // 2
    # ids (64, 64, 0, 0, 64, 64)
    _, wrong_sizes = sample(original_size=(half, half), target_size=(half, half), only_first_step=True)
    _, no_pooled = sample(conditional=torch.cat([conditional[:, :TOKENS], torch.zeros_like(conditional[:, TOKENS:])],
                                                1), only_first_step=True)
    for wrong in (wrong_sizes, no_pooled):
        assert len(wrong) == 1
        assert largest(wrong[0], their_steps[0]) > 1000 * TOLERANCE["atol"]  # observed ~0.37 and ~1.5
        assert not torch.allclose(wrong[0], ours_steps[0], **TOLERANCE)


def test_decoded_latents_equal_the_pipelines_image(tiny_sdxl_model, pipe, generator):
    # output_type="pt": the pipeline divides by the VAE's scaling factor (0.13025), decodes, maps to [0, 1].
    model = tiny_sdxl_model
    conditional, unconditional = model.embed(PROMPTS[:1]), model.empty_prompt(1)
    prompt_embeds, pooled = tokens_and_pooled(model, conditional)
    negative_embeds, negative_pooled = tokens_and_pooled(model, unconditional)
    captured = {}

    def capture(pipeline, index, timestep, tensors):
        captured["latents"] = tensors["latents"].clone()
        return {}

    image = pipe(prompt_embeds=prompt_embeds, pooled_prompt_embeds=pooled, negative_prompt_embeds=negative_embeds,
                 negative_pooled_prompt_embeds=negative_pooled, num_inference_steps=1, guidance_scale=GUIDANCE,
                 height=model.resolution, width=model.resolution, output_type="pt",
                 latents=torch.randn(1, 4, 16, 16, generator=generator), callback_on_step_end=capture).images
    assert model.vae.config.scaling_factor == 0.13025
    assert image.std() > 0.05  # not a saturated, constant image that any scaling would reproduce
    torch.testing.assert_close(model.decode(captured["latents"]), image, **TOLERANCE)  # observed: 0.0


# 3. DDIM inversion equals diffusers' DDIMInverseScheduler, with the UNet's inputs built here.

def test_ddim_inversion_equals_diffusers_inverse_scheduler(tiny_sdxl_model, pipe, generator):
    model = tiny_sdxl_model
    steps = 10
    latents = model.encode(torch.rand(2, 3, model.resolution, model.resolution, generator=generator))
    trajectory = ddim_invert(model.denoise, latents, model.embed(PROMPTS), model.schedule(steps))

    # The reference's inputs from diffusers' own encode_prompt and size ids, not from our adapter.
    prompt_embeds, _, pooled, _ = pipe.encode_prompt(PROMPTS, device=CPU, do_classifier_free_guidance=False)
    time_ids = sdxl_time_ids(model.resolution, model.resolution, 2)
    assert torch.equal(time_ids[:1], pipe._get_add_time_ids((128, 128), (0, 0), (128, 128), torch.float32, 32))

    def invert(time_ids, only_first_step=False):
        inverse = DDIMInverseScheduler.from_config(model.scheduler_config)
        inverse.set_timesteps(steps)
        expected = [latents]
        with torch.no_grad():
            for timestep in inverse.timesteps[:1] if only_first_step else inverse.timesteps:
                output = pipe.unet(expected[-1], timestep, encoder_hidden_states=prompt_embeds,
                                   added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
                expected.append(inverse.step(output, timestep, expected[-1]).prev_sample)
        return torch.stack(expected)

    expected = invert(time_ids)
    assert trajectory.shape == (steps + 1, 2, 4, 16, 16)
    assert torch.equal(trajectory[0], latents)
    relative_error = ((trajectory - expected).norm() / expected.norm()).item()
    assert relative_error < 1e-5, relative_error  # observed ~1e-7 (float32)
    assert (trajectory[-1] - latents).abs().mean() > 0.1  # it did move: x_T is noise, not the photo

    # Negative control: the first inverse step with halved size ids is already far off (observed ~1e-2
    # relative at t=1, where the latents barely move; over all 10 steps ~0.3).
    wrong = invert(sdxl_time_ids(model.resolution // 2, model.resolution // 2, 2), only_first_step=True)
    assert ((trajectory[1] - wrong[1]).norm() / wrong[1].norm()).item() > 100 * 1e-5


# 4. A saved folder loads back as the same SDXL model, its family read from the configs.

def test_a_saved_sdxl_folder_loads_back_whatever_its_name(tmp_path, tiny_sdxl_model, generator):
    folder = tmp_path / "stable-diffusion-v1-5"  # an SD 1.5 name: the family must come from the configs
    tiny_sdxl_model.save(folder)
    loaded = load_model(str(folder), device="cpu")
    assert loaded.family == "sdxl" and loaded.text.zeros_for_empty_prompt
    assert loaded.fingerprint == tiny_sdxl_model.fingerprint
    assert loaded.upcast_vae and loaded.vae.config.force_upcast
    embeddings = tiny_sdxl_model.embed(PROMPTS)
    assert torch.equal(loaded.embed(PROMPTS), embeddings)
    assert torch.equal(loaded.empty_prompt(2), tiny_sdxl_model.empty_prompt(2))
    assert not loaded.empty_prompt(1).any()
    latents = torch.randn(2, 4, 16, 16, generator=generator)
    torch.testing.assert_close(loaded.denoise(latents, 501, embeddings),
                               tiny_sdxl_model.denoise(latents, 501, embeddings), rtol=0, atol=0)


def test_force_zeros_false_in_model_index_makes_the_null_prompt_the_empty_string(tmp_path):
    model = tiny_sdxl_random(seed=0)
    folder = tmp_path / "sdxl"
    model.save(folder)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["force_zeros_for_empty_prompt"] is True
    index["force_zeros_for_empty_prompt"] = False
    (folder / "model_index.json").write_text(json.dumps(index))
    loaded = load_model(str(folder), device="cpu")
    assert loaded.family == "sdxl" and not loaded.text.zeros_for_empty_prompt
    empty = loaded.empty_prompt(2)
    assert torch.equal(empty, loaded.embed(["", ""]))
    assert empty.abs().max() > 0.1  # not the zeros a force-zeros model uses

    # And a model that says so itself writes it: saved and loaded again, it keeps the setting.
    model.text.zeros_for_empty_prompt = False
    model.save(tmp_path / "again")
    assert not load_model(str(tmp_path / "again"), device="cpu").text.zeros_for_empty_prompt
