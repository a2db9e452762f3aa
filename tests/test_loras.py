"""LoRA files fused into a model: the same function as the weights merged by hand, recorded in the
fingerprint and the artifacts, and every bad file or scale refused in one line."""
import math
import re

import pytest
import torch
from lora_helpers import merge_by_hand, write_tiny_lora
from safetensors.torch import load_file, save_file

from p2p_real.cli import main
from p2p_real.errors import ModelLoadError, OptionError
from p2p_real.loading import load_model
from p2p_real.random_models import tiny_random, tiny_sdxl_random


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory):
    return write_tiny_lora(tmp_path_factory.mktemp("lora") / "style.safetensors")


def outputs(model, generator):
    """The UNet's prediction and the text encoder's embedding on fresh inputs, in float64."""
    latents = torch.randn(2, 4, 16, 16, generator=generator, dtype=torch.float64)
    embeddings = model.embed(["a photo of a dog", "a cat"])
    return model.denoise(latents, 501, embeddings), embeddings


@pytest.mark.parametrize("scale", [1.0, 0.7])
def test_a_lora_gives_the_weights_merged_by_hand(lora_file, scale):
    fused = load_model("tiny-random", device="cpu", dtype=torch.float64, loras=[(str(lora_file), scale)])
    by_hand = tiny_random(seed=0).to(dtype=torch.float64)
    merge_by_hand(by_hand, lora_file, scale)
    base = tiny_random(seed=0).to(dtype=torch.float64)
    expected, unchanged = (outputs(model, torch.Generator().manual_seed(5)) for model in (by_hand, base))
    for got, want, before in zip(outputs(fused, torch.Generator().manual_seed(5)), expected, unchanged):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
        assert (got - before).abs().max() > 1e-3 * before.abs().max()  # the LoRA does change the model
    assert fused.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.__class__ is torch.nn.Linear


def test_an_sdxl_lora_gives_the_weights_merged_by_hand(tmp_path):
    lora = write_tiny_lora(tmp_path / "sdxl-style.safetensors", build=tiny_sdxl_random)
    fused = load_model("tiny-sdxl-random", device="cpu", dtype=torch.float64, loras=[(str(lora), 0.9)])
    by_hand = tiny_sdxl_random(seed=0).to(dtype=torch.float64)
    merge_by_hand(by_hand, lora, 0.9)
    for got, want in zip(*(outputs(model, torch.Generator().manual_seed(7)) for model in (fused, by_hand))):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_scale_zero_is_no_lora_and_the_fingerprint_covers_content_and_scale(lora_file, tmp_path, generator):
    plain = load_model("tiny-random", device="cpu", dtype=torch.float64)
    zero = load_model("tiny-random", device="cpu", dtype=torch.float64, loras=[(str(lora_file), 0.0)])
    for got, want in zip(*(outputs(model, torch.Generator().manual_seed(3)) for model in (zero, plain))):
        assert torch.equal(got, want)
    assert zero.fingerprint == plain.fingerprint and zero.loras == ()
    other = write_tiny_lora(tmp_path / "other.safetensors", seed=1)
    prints = {load_model("tiny-random", device="cpu", loras=loras).fingerprint
              for loras in ([(lora_file, 1.0)], [(lora_file, 0.5)], [(other, 1.0)], [(other, 1.0), (lora_file, 1.0)])}
    assert len(prints | {plain.fingerprint}) == 5
    again = load_model("tiny-random", device="cpu", loras=[(lora_file, 0.5)])
    assert again.fingerprint in prints and again.loras[0].file == "style.safetensors" and again.loras[0].scale == 0.5


def test_an_artifact_made_with_a_lora_refuses_an_edit_without_it(lora_file, tmp_path, capsys):
    photo = "data/photos/chelsea.jpg"
    fast = ["--model", "tiny-random", "--steps", "2", "--method", "ddim", "--quiet"]
    assert main(["invert", photo, "--prompt", "a cat", "--output", str(tmp_path), "--lora", f"{lora_file}:0.8",
                 *fast]) == 0
    capsys.readouterr()
    edit = ["edit", str(tmp_path / "chelsea"), "--target", "a dog", "--output", str(tmp_path / "edits"), "--quiet"]
    assert main(edit) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "made with LoRA style.safetensors at scale 0.8" in error
    assert f"--lora {lora_file}:0.8" in error
    assert main([*edit, "--lora", f"{lora_file}:0.5"]) == 2  # another scale is another model
    assert "style.safetensors at scale 0.8" in capsys.readouterr().err
    assert main([*edit, "--lora", f"{lora_file}:0.8"]) == 0
    # resume by content: the same LoRA and scale is done already, another scale is a new inversion
    invert = ["invert", photo, "--prompt", "a cat", "--output", str(tmp_path), *fast]
    assert main([*invert, "--lora", f"{lora_file}:0.8"]) == 0 and "1 already done" in capsys.readouterr().out
    assert main([*invert, "--lora", f"{lora_file}:0.3"]) == 2
    assert "model fingerprint" in capsys.readouterr().err


def bad_files(tmp_path, lora_file):
    tensors = load_file(lora_file)
    save_file({"first_stage_model.encoder.conv_in.weight": torch.randn(3, 3)}, tmp_path / "vae.safetensors")
    data = lora_file.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.safetensors").write_text("not a safetensors file")
    save_file({key.replace("down_blocks", "input_blocks"): value for key, value in tensors.items()},
              tmp_path / "renamed.safetensors")
    return {
        "vae.safetensors": "not a LoRA file (no LoRA weights for a UNet or text encoder",
        "cut.safetensors": "not a complete safetensors file, truncated",
        "notes.safetensors": "not a complete safetensors file",
        "renamed.safetensors": "matches no layer of this model",
    }


def test_bad_lora_files_are_refused_in_one_line(lora_file, tmp_path, capsys):
    photo, out = "data/photos/chelsea.jpg", str(tmp_path / "out")
    for name, message in bad_files(tmp_path, lora_file).items():
        with pytest.raises(ModelLoadError, match=re.escape(message)):
            load_model("tiny-random", device="cpu", loras=[(tmp_path / name, 1.0)])
        code = main(["invert", photo, "--prompt", "a cat", "--output", out, "--model", "tiny-random",
                     "--lora", str(tmp_path / name)])
        error = capsys.readouterr().err.strip()
        assert code == 2 and message in error and "\n" not in error and name in error
    wrong_family = r"made for another model \(text width 32\), not this model \(text width 64"
    with pytest.raises(ModelLoadError, match=wrong_family):
        load_model("tiny-sdxl-random", device="cpu", loras=[(lora_file, 1.0)])  # an SD 1.x-family LoRA on SDXL
    for scale in (math.nan, math.inf, "0.5"):
        with pytest.raises(OptionError, match="must be a finite number"):
            load_model("tiny-random", device="cpu", loras=[(lora_file, scale)])
    for given, message in ((f"{lora_file}:nan", "'nan' is not a finite number"),
                           (f"{lora_file}:strong", "'strong' is not a finite number"),
                           (str(tmp_path / "missing.safetensors:0.5"), "missing.safetensors: no such file")):
        assert main(["invert", photo, "--prompt", "a cat", "--output", out, "--lora", given]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and "--lora" in error and "\n" not in error
