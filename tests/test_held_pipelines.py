"""`load_model(pipe)`: a diffusers pipeline you hold, its modules used as they are."""
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
from lora_helpers import write_tiny_lora

from p2p_real.loading import load_model
from p2p_real.models import Model
from p2p_real.random_models import SD_V1_SCHEDULER, tiny_random, tiny_sdxl_random


def tiny_pipeline() -> StableDiffusionPipeline:
    parts = tiny_random(seed=0)
    return StableDiffusionPipeline(parts.vae, parts.text.encoder, parts.tokenizer, parts.unet,
                                   DDIMScheduler.from_config(SD_V1_SCHEDULER), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def test_a_pipeline_with_a_lora_loaded_equals_the_folder_with_the_lora(tmp_path, generator):
    lora = write_tiny_lora(tmp_path / "style.safetensors")
    tiny_random(seed=0).save(tmp_path / "folder")
    pipeline = tiny_pipeline().to(torch.float64)
    pipeline.load_lora_weights(str(tmp_path), weight_name=lora.name)  # adapters, not fused
    weights = pipeline.unet.conv_in.weight
    held = load_model(pipeline)
    assert held.unet is pipeline.unet and held.unet.conv_in.weight is weights  # the same modules, not copies
    assert held.dtype == torch.float64 and held.device.type == "cpu"  # the pipeline's own
    from_folder = load_model(str(tmp_path / "folder"), device="cpu", dtype=torch.float64, loras=[(str(lora), 1.0)])
    latents = torch.randn(2, 4, 16, 16, generator=generator, dtype=torch.float64)
    prompts = ["a photo of a dog", "a cat"]
    torch.testing.assert_close(held.embed(prompts), from_folder.embed(prompts), rtol=1e-9, atol=1e-9)
    embeddings = held.embed(prompts)
    torch.testing.assert_close(held.denoise(latents, 501, embeddings), from_folder.denoise(latents, 501, embeddings),
                               rtol=1e-9, atol=1e-9)
    without = load_model(tiny_pipeline())
    assert not torch.allclose(without.denoise(latents.float(), 501, embeddings.float()),
                              held.denoise(latents, 501, embeddings).float(), atol=1e-3)
    # its LoRA is in the fingerprint: the same pipeline without it, or at another scale, is another model
    plain = load_model(tiny_pipeline().to(torch.float64))
    assert len({held.fingerprint, without.fingerprint, from_folder.fingerprint}) == 3
    pipeline.set_adapters(["default_0"], adapter_weights=[0.5])
    assert Model.from_pipeline(pipeline).fingerprint not in (held.fingerprint, plain.fingerprint)


def test_the_pipelines_scheduler_config_gives_the_schedule():
    pipeline = tiny_pipeline()
    pipeline.scheduler = DDIMScheduler.from_config({**SD_V1_SCHEDULER, "prediction_type": "v_prediction",
                                                     "beta_end": 0.02})
    schedule = load_model(pipeline).schedule(10)
    expected = DDIMScheduler.from_config(pipeline.scheduler.config)
    assert schedule.prediction_type == "v_prediction"
    torch.testing.assert_close(schedule.alphas_cumprod, expected.alphas_cumprod.float())


def test_an_sdxl_pipeline_is_the_sdxl_family(generator):
    parts = tiny_sdxl_random(seed=0)
    text = parts.text
    pipeline = StableDiffusionXLPipeline(parts.vae, text.encoder, text.encoder_2, text.tokenizer, text.tokenizer_2,
                                         parts.unet, DDIMScheduler.from_config(parts.scheduler_config))
    held = load_model(pipeline)
    assert held.family == tiny_sdxl_random(seed=0).family and held.upcast_vae
    assert held.fingerprint == tiny_sdxl_random(seed=0).fingerprint  # no LoRA: the weights alone
    latents = torch.randn(1, 4, 16, 16, generator=generator)
    embeddings = held.embed(["a red car"])
    torch.testing.assert_close(held.denoise(latents, 301, embeddings),
                               tiny_sdxl_random(seed=0).denoise(latents, 301, embeddings))
