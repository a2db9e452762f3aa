"""Single-file checkpoints in the original LDM / SGM layout: the same model as its diffusers folder,
offline, and every bad file refused in one line."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from ldm_layout import original_layout, tiny_sd2_v, tiny_sdxl_two_widths
from lora_helpers import write_tiny_lora
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from p2p_real.cli import main
from p2p_real.editing.edit import edit
from p2p_real.editing.options import EditOptions
from p2p_real.errors import ModelLoadError
from p2p_real.images import load_image
from p2p_real.inversion.options import NullTextOptions
from p2p_real.loading import load_model
from p2p_real.pipeline import invert
from p2p_real.random_models import tiny_random
from p2p_real.single_file import CONFIGS, KINDS, checkpoint_kind

PHOTO = Path(__file__).parent.parent / "data" / "photos" / "chelsea.jpg"
BUILDS = {"sd-v1": (tiny_random, False), "sd-v2-v": (tiny_sd2_v, True), "sdxl": (tiny_sdxl_two_widths, False)}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Each tiny model as a diffusers folder and as one .safetensors file of the same weights."""
    root = tmp_path_factory.mktemp("checkpoints")
    for name, (build, open_clip) in BUILDS.items():
        model = build(seed=0)
        model.save(root / name)
        save_file(original_layout(model, open_clip), root / f"{name}.safetensors")
    return root


def run(model, image):
    """Null-text inversion (2 steps of 1 Adam step) and a word-swap edit of its result."""
    [inversion] = invert(model, [image], ["a cat sitting on a floor"], num_steps=2,
                         options=NullTextOptions(num_inner_steps=1))
    result = edit(model, inversion, "a dog sitting on a floor", EditOptions(cross_replace_steps=0.5))
    return [inversion.noise_latents, inversion.null_text_embeddings, inversion.reconstruction.double(),
            result.edited.double(), result.cross_maps]


@pytest.mark.parametrize("name", list(BUILDS))
def test_a_single_file_is_the_same_model_as_its_folder(checkpoints, name):
    from_file = load_model(str(checkpoints / f"{name}.safetensors"), device="cpu", dtype=torch.float64,
                           model_config=str(checkpoints / name))
    from_folder = load_model(str(checkpoints / name), device="cpu", dtype=torch.float64)
    assert from_file.fingerprint == from_folder.fingerprint and from_file.family == from_folder.family
    assert from_file.scheduler_config["prediction_type"] == from_folder.scheduler_config["prediction_type"]
    assert from_file.tokenizer.pad_token == from_folder.tokenizer.pad_token
    image = load_image(PHOTO, from_folder.resolution)
    for got, want in zip(run(from_file, image), run(from_folder, image)):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


def test_the_family_is_read_from_the_keys(checkpoints):
    from safetensors import safe_open

    for name, kind_name in (("sd-v1", "SD 1.x"), ("sd-v2-v", "SD 2.x"), ("sdxl", "SDXL")):
        path = checkpoints / f"{name}.safetensors"
        with safe_open(path, "pt") as file:
            assert checkpoint_kind(path, list(file.keys())).name == kind_name


META_PARAMETERS = {  # the released models' parameter counts (UNet, VAE, text encoders)
    "sd-v1": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd-v2": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    "sdxl-base": {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480,
                  "text_encoder_2": 694_659_840},
}


@pytest.mark.parametrize("folder", [kind.config for kind in KINDS])
def test_the_shipped_configs_build_the_released_architectures(folder):
    classes = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel,
               "text_encoder_2": CLIPTextModelWithProjection}
    index = json.loads((CONFIGS / folder / "model_index.json").read_text())
    counts = {}
    with torch.device("meta"):  # shapes only: no memory, no time
        for part, expected in META_PARAMETERS[folder].items():
            assert index[part][1] == classes[part].__name__
            config_path = CONFIGS / folder / part / "config.json"
            if part.startswith("text_encoder"):
                network = classes[part](CLIPTextConfig.from_json_file(config_path))
            else:
                network = classes[part].from_config(classes[part].load_config(config_path.parent))
            counts[part] = sum(weight.numel() for weight in network.parameters())
    assert counts == META_PARAMETERS[folder]


def test_no_network_is_touched_for_a_single_file(checkpoints, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    model = ["--model", str(checkpoints / "sd-v2-v.safetensors"), "--model-config", str(checkpoints / "sd-v2-v"),
             "--quiet"]
    assert main(["invert", str(PHOTO), "--prompt", "a cat", "--output", str(tmp_path), "--steps", "2",
                 "--inner-steps", "1", *model]) == 0
    assert main(["edit", str(tmp_path / "chelsea"), "--target", "a dog", "--output", str(tmp_path / "edits"),
                 *model]) == 0
    assert (tmp_path / "edits" / "chelsea").is_dir()
    record = json.loads((tmp_path / "chelsea" / "inversion.json").read_text())
    assert record["model_name"] == str(checkpoints / "sd-v2-v.safetensors")
    assert record["scheduler_config"]["prediction_type"] == "v_prediction"
    # the weights cannot tell the prediction type: one forced by the flag is part of the model
    other = tmp_path / "epsilon"
    assert main(["invert", str(PHOTO), "--prompt", "a cat", "--output", str(other), "--steps", "2", "--method", "ddim",
                 "--prediction-type", "epsilon", *model]) == 0
    capsys.readouterr()
    assert main(["edit", str(other / "chelsea"), "--target", "a dog", "--output", str(other), *model]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the libraries' loading bars
    assert error.startswith("p2p-real: error: ") and "made with prediction type epsilon" in error
    assert "--prediction-type epsilon" in error


def test_a_ckpt_loads_only_without_unpickling_code(checkpoints, tmp_path):
    from safetensors.torch import load_file

    weights = load_file(checkpoints / "sd-v1.safetensors")
    torch.save({"state_dict": weights, "global_step": 1}, tmp_path / "plain.ckpt")
    from_ckpt = load_model(str(tmp_path / "plain.ckpt"), device="cpu", model_config=str(checkpoints / "sd-v1"))
    assert from_ckpt.fingerprint == load_model(str(checkpoints / "sd-v1"), device="cpu").fingerprint
    torch.save({"state_dict": weights, "callback": Path("a Python object")}, tmp_path / "pickled.ckpt")
    with pytest.raises(ModelLoadError, match="only unpickling arbitrary code would read"):
        load_model(str(tmp_path / "pickled.ckpt"), device="cpu")


def test_bad_checkpoint_files_are_refused_in_one_line(checkpoints, tmp_path, capsys):
    data = (checkpoints / "sd-v1.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "text.safetensors").write_text("a note, not weights")
    save_file({"lora_unet_down_blocks_0.lora_down.weight": torch.randn(4, 8)}, tmp_path / "lora.safetensors")
    torch.save({"state_dict": {"model.diffusion_model.x": torch.randn(2)}}, tmp_path / "unet-only.ckpt")
    cases = {"cut.safetensors": "truncated", "text.safetensors": "not a safetensors file",
             "lora.safetensors": "not a Stable Diffusion checkpoint", "unet-only.ckpt": "without a text encoder"}
    for name, message in cases.items():
        code = main(["invert", str(PHOTO), "--prompt", "a cat", "--output", str(tmp_path / "out"),
                     "--model", str(tmp_path / name)])
        error = capsys.readouterr().err.strip()
        assert code == 2 and message in error and name in error and "\n" not in error, error


def test_quiet_single_file_and_lora_runs_print_nothing_on_stderr(checkpoints, tmp_path):
    """Under --quiet a single file's pipeline loading (diffusers' own bars) and a LoRA stay silent:
    what users see, in a fresh process as they run it."""
    lora = write_tiny_lora(tmp_path / "style.safetensors")
    command = [sys.executable, "-m", "p2p_real", "invert", str(PHOTO), "--prompt", "a cat", "--output",
               str(tmp_path / "out"), "--steps", "2", "--inner-steps", "1", "--model",
               str(checkpoints / "sd-v1.safetensors"), "--model-config", str(checkpoints / "sd-v1"),
               "--lora", f"{lora}:0.8", "--quiet"]
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent), "HF_HUB_OFFLINE": "1"}
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    assert "inverted 1 photo(s)" in finished.stdout
