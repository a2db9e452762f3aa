import pytest
import torch

from p2p_real.errors import ModelLoadError, PromptError
from p2p_real.loading import load_model
from p2p_real.random_models import tiny_random


def test_a_saved_folder_loads_back_as_the_same_model(tmp_path, tiny_model, generator):
    tiny_model.save(tmp_path / "tiny")
    loaded = load_model(str(tmp_path / "tiny"), device="cpu")
    assert loaded.fingerprint == tiny_model.fingerprint
    assert loaded.scheduler_config["prediction_type"] == "epsilon"
    latents = torch.randn(1, 4, 16, 16, generator=generator)
    embeddings = tiny_model.embed(["a photo of a dog"])
    torch.testing.assert_close(loaded.embed(["a photo of a dog"]), embeddings)
    torch.testing.assert_close(loaded.denoise(latents, 501, embeddings), tiny_model.denoise(latents, 501, embeddings))


def test_v_prediction_comes_from_the_models_scheduler_config(tmp_path):
    tiny_random(prediction_type="v_prediction").save(tmp_path / "v")
    assert load_model(str(tmp_path / "v")).schedule(10).prediction_type == "v_prediction"


@pytest.mark.parametrize("hub_id", ["CompVis/stable-diffusion-v1-4", "stabilityai/stable-diffusion-xl-base-1.0"])
def test_missing_weights_give_one_clear_line(monkeypatch, tmp_path, hub_id):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelLoadError) as caught:
        load_model(hub_id)
    message = str(caught.value)
    assert hub_id in message and "--model" in message and "\n" not in message
    with pytest.raises(ModelLoadError, match="not a folder and not a hub id"):
        load_model(str(tmp_path / "no-such-folder"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="could not load it as a diffusers"):
        load_model(str(tmp_path / "empty"))


def test_tokenizer_is_clips(tiny_model):
    # Reference ids from CLIP's own tokenizer (open_clip / openai CLIP) for these words.
    assert tiny_model.tokenizer("a cat sitting").input_ids == [49406, 320, 2368, 4919, 49407]
    assert tiny_model.tokenizer("A Kitten, sitting!").input_ids == [49406, 320, 13063, 267, 4919, 256, 49407]


def test_too_long_prompt_names_the_prompt(tiny_model):
    prompt = "a very " + "long " * 80 + "caption"
    with pytest.raises(PromptError, match="tokens long.*at most 77"):
        tiny_model.embed([prompt])


def test_encode_and_decode_compute_what_diffusers_computes(tiny_model, generator):
    """encode is the VAE's posterior mean times the scaling factor, decode its inverse mapped from [-1, 1]
    to [0, 1], on the same VAE. Random latents decode far outside [-1, 1] on this VAE, so the clamp is
    exercised too."""
    vae, scaling_factor = tiny_model.vae, tiny_model.vae.config.scaling_factor
    images = torch.rand(2, 3, 128, 128, generator=generator)
    latents = tiny_model.encode(images)
    assert latents.shape == (2, 4, 16, 16) and tiny_model.resolution == 128
    with torch.no_grad():
        expected_latents = vae.encode(images * 2 - 1).latent_dist.mean * scaling_factor
    torch.testing.assert_close(latents, expected_latents, atol=1e-4, rtol=1e-4)

    fresh = torch.randn(2, 4, 16, 16, generator=generator)
    with torch.no_grad():
        expected = ((vae.decode(fresh / scaling_factor).sample + 1) / 2).clamp(0, 1)
    decoded = tiny_model.decode(fresh)
    assert decoded.shape == images.shape
    torch.testing.assert_close(decoded, expected, atol=1e-4, rtol=1e-4)


def test_a_smooth_picture_survives_encode_and_decode_as_more_than_a_constant(tiny_model):
    rows, columns = torch.meshgrid(torch.linspace(0, 1, 128), torch.linspace(0, 1, 128), indexing="ij")
    gradient = torch.stack([columns, rows, (rows + columns) / 2])[None]  # (1, 3, 128, 128)
    decoded = tiny_model.decode(tiny_model.encode(gradient))
    assert decoded.std() > 0.05


def test_cuda_graphs_need_a_cuda_device(tiny_model):
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        tiny_random(seed=2).use_cuda_graphs()
    assert not tiny_model.runner.graphed


def test_a_bfloat16_model_sees_embedding_changes_smaller_than_bfloat16_can_hold(generator):
    # Null-text inversion moves the embedding by small Adam steps; a bf16 UNet must not round them away.
    full = load_model("tiny-random", device="cpu")
    half = load_model("tiny-random", device="cpu", dtype="bfloat16")
    assert full.dtype == torch.float32 and half.dtype == torch.bfloat16  # "auto" is float32 on the CPU
    attn2 = half.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2
    assert attn2.to_k.weight.dtype == attn2.to_v.weight.dtype == torch.float32
    assert attn2.to_q.weight.dtype == torch.bfloat16
    latents = torch.randn(2, 4, 16, 16, generator=generator)
    embedding = full.embed(["a photo of a dog", ""]).bfloat16().float()  # on bf16's grid
    # Under half of bf16's spacing at each value: rounding the embedding would undo the whole step.
    step = embedding.abs() * 2**-10 * torch.randn(embedding.shape, generator=generator).sign()
    assert torch.equal((embedding + step).bfloat16(), embedding.bfloat16())
    before, after = half.denoise(latents, 501, embedding), half.denoise(latents, 501, embedding + step)
    assert before.dtype == torch.float32 and not torch.equal(before, after)
    reference = full.denoise(latents, 501, embedding)
    assert (before - reference).norm() / reference.norm() < 0.03  # and it is still the same function

    trainable = embedding.clone().requires_grad_(True)
    half.denoise(latents, 501, trainable).pow(2).sum().backward()
    assert trainable.grad.dtype == torch.float32 and trainable.grad.abs().sum() > 0


def test_casting_to_half_precision_prints_no_library_warning(caplog):
    # diffusers' ModelMixin.to warns "modules that should be kept in float32" for every model given a
    # dtype, SD's UNet and VAE included, which keep none; users saw it twice on every GPU run.
    model = tiny_random(seed=3)
    model.unet.to(dtype=torch.float16)
    assert "should be kept in float32" in caplog.text  # the library's own cast does warn
    caplog.clear()
    model.to(dtype=torch.float16)
    assert "should be kept in float32" not in caplog.text
    assert model.unet.dtype == model.vae.dtype == torch.float16
    assert all(buffer.dtype == torch.int64 for buffer in model.text.encoder.buffers())  # ids stay integers
