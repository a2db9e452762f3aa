"""SDXL's VAE overflows in float16; never return NaNs silently.

diffusers' SDXL pipeline keeps a VAE whose config says `force_upcast` in float32 whatever the
UNet's dtype; `Model(upcast_vae=True)` does the same, and a VAE left in float16 that overflows
raises `NumericalError` from `encode` / `decode` instead of handing NaNs on to PSNR, PNGs and edits.
The overflowing VAE here is the tiny SDXL one with its input convolutions scaled up, so that its
float16 activations pass float16's largest value, 65504, as SDXL's real VAE does at 1024 px.
"""
import copy
import json

import pytest
import torch

from p2p_real.errors import NumericalError, P2PError
from p2p_real.images import load_image
from p2p_real.loading import load_model
from p2p_real.models import Model
from p2p_real.pipeline import invert
from p2p_real.random_models import sdxl_vae, tiny_sdxl_random

FLOAT16_MAX = torch.finfo(torch.float16).max  # 65504
SCALE = 2e5  # conv_in's outputs are about 2 at random init: about 4e5 once scaled
CAPTION = "a close-up photo of a tabby cat"


def small_vae(seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = sdxl_vae(block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=16, sample_size=128)
    return vae.requires_grad_(False).eval()


def overflowing_vae(seed: int = 0):
    """The tiny SDXL VAE with both input convolutions scaled by SCALE: float32 carries it (the group
    norms after them rescale), float16 cannot hold their outputs."""
    vae = small_vae(seed)
    with torch.no_grad():
        for conv in (vae.encoder.conv_in, vae.decoder.conv_in):
            conv.weight.mul_(SCALE)
            conv.bias.mul_(SCALE)
    return vae


def sdxl_model(vae, upcast_vae: bool) -> Model:
    """A tiny SDXL model (fresh parts: the session's tiny_sdxl_model is never touched) around `vae`."""
    base = tiny_sdxl_random(seed=2)
    return Model(base.unet, vae, base.text, dict(base.scheduler_config), name="tiny-sdxl-overflowing-vae",
                 upcast_vae=upcast_vae)


def dtypes(module) -> set:
    return {parameter.dtype for parameter in module.parameters()}


@pytest.fixture
def images():
    return torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(5))


@pytest.fixture
def latents():
    return torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(6))


def peak_activation(conv, run) -> float:
    peaks = []
    handle = conv.register_forward_hook(lambda module, args, output: peaks.append(output.abs().amax().item()))
    try:
        with torch.no_grad():
            run()
    finally:
        handle.remove()
    return max(peaks)


def test_the_precondition_this_vae_overflows_in_float16_and_not_in_float32(images, latents):
    vae = overflowing_vae()
    pixels, scaled = images * 2 - 1, latents / vae.config.scaling_factor
    # float32: activations beyond float16's range, outputs finite.
    assert peak_activation(vae.encoder.conv_in, lambda: vae.encode(pixels)) > 2 * FLOAT16_MAX
    assert peak_activation(vae.decoder.conv_in, lambda: vae.decode(scaled)) > 2 * FLOAT16_MAX
    with torch.no_grad():
        assert torch.isfinite(vae.encode(pixels).latent_dist.mean).all()
        assert torch.isfinite(vae.decode(scaled).sample).all()
        # float16, called directly (no Model in between): inf after conv_in, NaN from the group norm on.
        half = copy.deepcopy(vae).half()
        encoded = half.encode(pixels.half()).latent_dist.mean
        decoded = half.decode(scaled.half()).sample
    assert encoded.dtype == decoded.dtype == torch.float16
    assert not torch.isfinite(encoded).any() and not torch.isfinite(decoded).any()
    # The control: the unscaled VAE runs in float16 on this CPU (conv, group norm, upsampling
    # all have float16 kernels in this torch) and agrees with float32 to float16's precision.
    plain = small_vae()
    with torch.no_grad():
        full = plain.decode(scaled).sample
        reduced = copy.deepcopy(plain).half().decode(scaled.half()).sample
    assert torch.isfinite(reduced).all()
    torch.testing.assert_close(reduced.float(), full, rtol=0, atol=2e-2)


def test_an_upcast_vae_stays_float32_in_a_float16_model_and_gives_finite_values(images, latents):
    vae = overflowing_vae()
    reference = copy.deepcopy(vae)  # float32, outside any Model
    model = sdxl_model(vae, upcast_vae=True).to(dtype=torch.float16)
    assert model.dtype == torch.float16 and model.unet.conv_in.weight.dtype == torch.float16
    assert all(dtypes(encoder) == {torch.float16} for encoder in model.text.encoders)
    assert dtypes(model.vae) == {torch.float32}
    scaling = vae.config.scaling_factor
    with torch.no_grad():
        expected_latents = reference.encode(images * 2 - 1).latent_dist.mean * scaling
        expected_pixels = ((reference.decode(latents / scaling).sample + 1) / 2).clamp(0, 1)
    encoded = model.encode(images)
    assert encoded.dtype == torch.float32 and torch.isfinite(encoded).all()
    torch.testing.assert_close(encoded, expected_latents, rtol=0, atol=0)  # the float32 VAE's own values
    decoded = model.decode(latents)
    assert decoded.dtype == torch.float32 and torch.isfinite(decoded).all()
    torch.testing.assert_close(decoded, expected_pixels, rtol=0, atol=0)
    assert decoded.std() > 1e-2  # not a clamped constant
    # And end to end: a float16 UNet between the float32 encode and decode.
    photo = load_image("data/photos/chelsea.jpg", model.resolution)
    [inversion] = invert(model, [photo], [CAPTION], method="ddim", num_steps=2)
    assert all(torch.isfinite(torch.tensor(value)) for value in inversion.metrics.values()), inversion.metrics
    assert torch.isfinite(inversion.noise_latents).all()


def test_a_float16_vae_that_overflows_raises_instead_of_returning_nan(images, latents):
    model = sdxl_model(overflowing_vae(), upcast_vae=False).to(dtype=torch.float16)
    assert dtypes(model.vae) == {torch.float16}
    for call, doing in ((lambda: model.decode(latents), "decoding"), (lambda: model.encode(images), "encoding")):
        with pytest.raises(NumericalError) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and doing in message, message
        assert "float16" in message and "float32" in message, message  # what overflowed, and what to use
    assert issubclass(NumericalError, P2PError)  # the CLI prints it on one line and exits 2
    # invert() encodes first: it fails there, before any UNet step, not with a NaN PSNR at the end.
    photo = load_image("data/photos/chelsea.jpg", model.resolution)
    with pytest.raises(NumericalError, match="encoding"):
        invert(model, [photo], [CAPTION], method="ddim", num_steps=2)


def test_a_float16_vae_that_does_not_overflow_is_left_alone(images, latents):
    # The check is no false alarm: the unscaled VAE in float16 decodes and encodes as float32 does.
    vae = small_vae()
    reference = copy.deepcopy(vae)
    model = sdxl_model(vae, upcast_vae=False).to(dtype=torch.float16)
    assert dtypes(model.vae) == {torch.float16}
    scaling = vae.config.scaling_factor
    with torch.no_grad():
        expected_pixels = ((reference.decode(latents / scaling).sample + 1) / 2).clamp(0, 1)
        expected_latents = reference.encode(images * 2 - 1).latent_dist.mean * scaling
    torch.testing.assert_close(model.decode(latents), expected_pixels, rtol=0, atol=1e-2)
    torch.testing.assert_close(model.encode(images), expected_latents, rtol=0, atol=1e-2)


def test_load_model_upcasts_the_sdxl_vae_only():
    sdxl = load_model("tiny-sdxl-random", device="cpu", dtype="float16")
    assert sdxl.family == "sdxl" and sdxl.upcast_vae and sdxl.vae.config.force_upcast
    assert sdxl.dtype == torch.float16 and sdxl.unet.conv_in.weight.dtype == torch.float16
    assert all(dtypes(encoder) == {torch.float16} for encoder in sdxl.text.encoders)
    assert dtypes(sdxl.vae) == {torch.float32}
    # SD 1.x/2.x: diffusers' own pipeline never upcasts, whatever the VAE config says (its
    # AutoencoderKL defaults to force_upcast=True, so the family decides, not the flag alone).
    sd = load_model("tiny-random", device="cpu", dtype="float16")
    assert sd.family == "sd" and not sd.upcast_vae and sd.vae.config.force_upcast
    assert dtypes(sd.vae) == {torch.float16} and sd.dtype == torch.float16


def test_a_saved_sdxl_folder_follows_its_vae_configs_force_upcast(tmp_path, tiny_sdxl_model):
    tiny_sdxl_model.save(tmp_path / "upcast")
    loaded = load_model(str(tmp_path / "upcast"), device="cpu", dtype="float16")
    assert loaded.upcast_vae and dtypes(loaded.vae) == {torch.float32} and loaded.dtype == torch.float16
    tiny_sdxl_model.save(tmp_path / "kept")
    config = tmp_path / "kept" / "vae" / "config.json"  # an SDXL VAE fixed for float16 (e.g. madebyollin's)
    config.write_text(json.dumps({**json.loads(config.read_text()), "force_upcast": False}))
    kept = load_model(str(tmp_path / "kept"), device="cpu", dtype="float16")
    assert kept.family == "sdxl" and not kept.upcast_vae and dtypes(kept.vae) == {torch.float16}
