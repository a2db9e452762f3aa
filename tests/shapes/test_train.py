import json

import numpy as np
import torch
from safetensors.torch import load_file

from p2p_real.loading import load_model
from p2p_real.pipeline import invert
from p2p_real.shapes.scenes import scene_at
from p2p_real.shapes.train import SceneBank, TrainOptions, main


def test_training_runs_resumes_and_exports_a_loadable_model(tmp_path):
    run = tmp_path / "run"
    tiny = ["--output", str(run), "--batch-size", "2", "--device", "cpu", "--minutes", "5", "--scenes", "6",
            "--workers", "0"]
    assert main(["--stage", "vae", "--steps", "2", *tiny]) == 0
    assert json.loads((run / "state.json").read_text())["vae_step"] == 2
    assert main(["--stage", "vae", "--steps", "3", *tiny]) == 0  # resumes at 2, takes one more step
    assert [json.loads(line)["step"] for line in (run / "log-vae.jsonl").read_text().splitlines()] == [2, 3]
    scale = json.loads((run / "checkpoint" / "vae" / "config.json").read_text())["scaling_factor"]
    assert scale != 1.0 and scale > 0  # set from the latents' spread after the stage
    assert main(["--stage", "unet", "--steps", "2", *tiny, "--export", str(tmp_path / "shapes")]) == 0
    weights = load_file(str(tmp_path / "shapes" / "unet" / "diffusion_pytorch_model.safetensors"))
    assert all(tensor.dtype == torch.float16 for tensor in weights.values())  # fp16 on disk, to stay small
    again = tmp_path / "again"  # a new run that starts from the export: same weights before its first step
    assert main(["--stage", "unet", "--steps", "0", *tiny[2:], "--output", str(again),
                 "--init-from", str(tmp_path / "shapes")]) == 0
    restarted = load_file(str(again / "checkpoint" / "unet" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(restarted[key], weights[key].float()) for key in weights)
    model = load_model(str(tmp_path / "shapes"), device="cpu")  # float32 for CPU arithmetic
    assert model.resolution == 64
    scene = scene_at(seed=99, index=0)
    [inversion] = invert(model, [scene.image], [scene.caption], method="ddim", num_steps=2)
    assert inversion.noise_latents.shape == (4, 16, 16)


def test_the_scene_bank_is_reproducible_and_matches_the_generator():
    options = TrainOptions(batch_size=3)
    bank = SceneBank.draw(seed=0, count=5, device="cpu", workers=2)
    again = SceneBank.draw(seed=0, count=5, device="cpu", workers=0)
    assert torch.equal(bank.images, again.images) and bank.captions == again.captions
    scene = scene_at(0, 4)
    assert torch.equal(bank.images[4].permute(1, 2, 0), torch.from_numpy(np.asarray(scene.image)))
    assert bank.captions[4] == scene.caption
    first, captions = bank.batch(7, options)
    second, _ = bank.batch(7, options)
    assert torch.equal(first, second) and first.shape == (3, 3, 64, 64) and 0 <= first.min() and first.max() <= 1
    assert all(caption in bank.captions for caption in captions)
