"""tiny-sd3-random against diffusers' own StableDiffusion3Pipeline, built from the same modules, in
float64: the text embeddings (sequence and pooled, prompt and negative prompt), the latents after
each guided sampling step, the VAE's latent scaling, the saved folder."""
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

from p2p_real.loading import load_model
from p2p_real.sampling import ddim_sample

PROMPT = "a photo of a cat sitting on the grass"


def pipeline_of(model) -> StableDiffusion3Pipeline:
    text = model.text
    return StableDiffusion3Pipeline(
        transformer=model.denoiser, vae=model.vae,
        scheduler=FlowMatchEulerDiscreteScheduler.from_config(model.scheduler_config),
        text_encoder=text.encoder, tokenizer=text.tokenizer, text_encoder_2=text.encoder_2,
        tokenizer_2=text.tokenizer_2, text_encoder_3=text.encoder_3, tokenizer_3=text.tokenizer_3)


def test_embeddings_equal_the_pipelines_encode_prompt(tiny_sd3_float64):
    model = tiny_sd3_float64
    pipe = pipeline_of(model)
    tokens, negative, pooled, negative_pooled = pipe.encode_prompt(PROMPT, None, None, device="cpu",
                                                                   do_classifier_free_guidance=True)
    ours, empty = model.embed([PROMPT]), model.empty_prompt(1)
    width = model.text.pooled_width
    assert ours.shape == (1, 77 + 256 + 1, 96) and tokens.dtype == torch.float64
    torch.testing.assert_close(ours[:, :-1], tokens, rtol=0, atol=0)
    torch.testing.assert_close(ours[:, -1, :width], pooled, rtol=0, atol=0)
    torch.testing.assert_close(empty[:, :-1], negative, rtol=0, atol=0)
    torch.testing.assert_close(empty[:, -1, :width], negative_pooled, rtol=0, atol=0)
    assert ours[:, -1, width:].abs().max() == 0 and (ours[:, :-1] - empty[:, :-1]).abs().max() > 1e-2


@pytest.mark.parametrize("steps, guidance", [(4, 7.0), (7, 3.5)])
def test_sampling_equals_the_pipeline_step_for_step(tiny_sd3_float64, steps, guidance):
    model = tiny_sd3_float64
    pipe = pipeline_of(model)
    noise = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(steps), dtype=torch.float64)
    conditional, unconditional = model.embed([PROMPT]), model.empty_prompt(1)
    width = model.text.pooled_width
    theirs = []
    pipe(prompt_embeds=conditional[:, :-1], pooled_prompt_embeds=conditional[:, -1, :width],
         negative_prompt_embeds=unconditional[:, :-1], negative_pooled_prompt_embeds=unconditional[:, -1, :width],
         latents=noise.clone(), num_inference_steps=steps, guidance_scale=guidance, output_type="latent",
         callback_on_step_end=lambda pipe, index, t, tensors: theirs.append(tensors["latents"].clone()) or {})
    ours = []
    ddim_sample(model.denoise, noise, model.schedule(steps), conditional,
                unconditional.expand(steps, -1, -1, -1), guidance,
                after_step=lambda index, latents: ours.append(latents.clone()) or latents)
    assert len(ours) == len(theirs) == steps
    for index, (mine, expected) in enumerate(zip(ours, theirs)):
        # diffusers' step adds in float32 (it upcasts the sample to float32, not to float64)
        torch.testing.assert_close(mine, expected, rtol=1e-6, atol=1e-6, msg=f"step {index}")
    assert (ours[-1] - noise).abs().max() > 0.1  # the loop moved the latents


def test_the_schedule_is_the_schedulers(tiny_sd3_model):
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(tiny_sd3_model.scheduler_config)
    scheduler.set_timesteps(28)
    schedule = tiny_sd3_model.schedule(28)
    assert scheduler.config.shift == 3.0
    torch.testing.assert_close(schedule.timesteps, scheduler.timesteps, rtol=0, atol=0)
    assert schedule.sigmas == tuple(scheduler.sigmas.tolist()) and schedule.sigmas[-1] == 0
    latents, velocity = torch.randn(2, 4, 16, 16), torch.randn(2, 4, 16, 16)
    for timestep in schedule.timesteps[:3]:
        expected = scheduler.step(velocity, timestep, latents).prev_sample
        torch.testing.assert_close(schedule.step(velocity, float(timestep), latents), expected)
        # Euler inversion is the step run backwards: up from the level below with the same velocity
        torch.testing.assert_close(schedule.inverse_step(velocity, float(timestep), expected), latents)


def test_vae_latents_are_shifted_and_scaled_as_the_pipeline(tiny_sd3_float64):
    model = tiny_sd3_float64
    pixels = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    mean = model.vae.encode(pixels * 2 - 1).latent_dist.mean
    config = model.vae.config
    torch.testing.assert_close(model.encode(pixels), (mean - config.shift_factor) * config.scaling_factor)
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    expected = model.vae.decode(latents / config.scaling_factor + config.shift_factor).sample
    torch.testing.assert_close(model.decode(latents), ((expected.float() + 1) / 2).clamp(0, 1))


def test_a_saved_model_loads_back_as_sd3_and_opens_in_diffusers(tiny_sd3_model, tmp_path):
    tiny_sd3_model.save(tmp_path)
    loaded = load_model(str(tmp_path), device="cpu")
    assert loaded.family == "sd3" and loaded.fingerprint == tiny_sd3_model.fingerprint
    assert loaded.schedule(28).sigmas == tiny_sd3_model.schedule(28).sigmas
    torch.testing.assert_close(loaded.embed([PROMPT]), tiny_sd3_model.embed([PROMPT]))
    pipe = StableDiffusion3Pipeline.from_pretrained(tmp_path)
    assert type(pipe.transformer).__name__ == "SD3Transformer2DModel" and pipe.tokenizer_3 is not None


def test_half_precision_keeps_t5s_wo_in_float32_as_from_pretrained_does():
    from p2p_real.random_sd3 import tiny_sd3_random

    model = tiny_sd3_random(seed=0).to(dtype=torch.float16)
    t5 = model.text.encoder_3
    assert t5.encoder.block[0].layer[1].DenseReluDense.wo.weight.dtype == torch.float32
    assert t5.encoder.block[0].layer[1].DenseReluDense.wi_0.weight.dtype == torch.float16
    assert model.denoiser.dtype == torch.float16 and torch.isfinite(model.embed(["a photo of a cat"])).all()
