"""Train the small `shapes` text-to-image model on generated scenes, in diffusers/transformers classes
so that `load_model(folder)` reads the result like any SD checkpoint.

Two stages, each resumable and time-boxed (the GPU runs in calls of at most 10 minutes):
  vae   an AutoencoderKL (64 px -> 16x16x4 latents) on reconstruction + a small KL term;
  unet  the UNet and a small CLIP text encoder together, epsilon prediction on the frozen VAE's
        latents, with 10% empty captions so that classifier-free guidance works.

    python -m p2p_real.shapes.train --stage vae --minutes 8 --output runs/shapes
    python -m p2p_real.shapes.train --stage unet --minutes 8 --output runs/shapes     # repeat to resume
    python -m p2p_real.shapes.train --export p2p_real/assets/shapes --output runs/shapes
"""
from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from ..models import SD_V1_SCHEDULER, Model, clip_tokenizer
from .scenes import scene_at

IMAGE_SIZE = 64


@dataclass(frozen=True)
class TrainOptions:
    batch_size: int = 64
    vae_learning_rate: float = 1e-3
    unet_learning_rate: float = 2e-4
    kl_weight: float = 1e-6  # keeps the latent near a unit Gaussian without blurring (SD's VAE uses ~1e-6)
    caption_dropout: float = 0.1  # empty captions, so the model also learns the unconditional prediction
    seed: int = 0
    checkpoint_every: int = 500


def build_vae() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(32, 64, 64), down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, layers_per_block=1, latent_channels=4, norm_num_groups=16,
        sample_size=IMAGE_SIZE, scaling_factor=1.0,  # set from the latents' spread after the VAE stage
    )


def build_text_encoder() -> CLIPTextModel:
    return CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu"))


def build_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 4, block_out_channels=(64, 128, 128),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1, cross_attention_dim=64, attention_head_dim=8, norm_num_groups=32,
    )


def scene_pixels(seed: int, index: int) -> tuple[np.ndarray, str]:
    scene = scene_at(seed, index, IMAGE_SIZE)
    return np.asarray(scene.image, dtype=np.uint8), scene.caption


@dataclass
class SceneBank:
    """Training scenes drawn once, in parallel, and kept on the device: the CPU renders a scene in
    about 8 ms, far slower than a training step of this model on a GPU."""

    images: torch.Tensor  # (N, 3, H, W) uint8
    captions: list[str]

    @classmethod
    def draw(cls, seed: int, count: int, device, workers: int | None = None) -> "SceneBank":
        render = partial(scene_pixels, seed)
        if workers == 0:
            drawn = list(map(render, range(count)))
        else:
            with ProcessPoolExecutor(workers) as pool:
                drawn = list(pool.map(render, range(count), chunksize=64))
        pixels = torch.from_numpy(np.stack([image for image, _ in drawn])).permute(0, 3, 1, 2)  # (N, 3, H, W)
        return cls(pixels.contiguous().to(device), [caption for _, caption in drawn])

    def batch(self, step: int, options: TrainOptions) -> tuple[torch.Tensor, list[str]]:
        """Batch `step`: indices drawn from (seed, step) alone, so a resumed run sees what it would have."""
        generator = torch.Generator().manual_seed(options.seed * 1_000_003 + step)
        indices = torch.randint(len(self.captions), (options.batch_size,), generator=generator)
        return self.images[indices.to(self.images.device)].float() / 255, [self.captions[i] for i in indices.tolist()]


class Run:
    """A training run's folder: checkpoint/<part>/ (diffusers layout), optimizer.pt, state.json."""

    def __init__(self, folder: str | Path, device: str):
        self.folder = Path(folder)
        self.device = device
        self.state = json.loads((self.folder / "state.json").read_text()) if (self.folder / "state.json").is_file() else {}

    def part(self, name: str, build):
        saved = self.folder / "checkpoint" / name
        classes = {"vae": AutoencoderKL, "unet": UNet2DConditionModel, "text_encoder": CLIPTextModel}
        module = classes[name].from_pretrained(saved) if saved.is_dir() else build()
        return module.to(self.device)

    def save(self, parts: dict, optimizer, stage: str, step: int, log: list[dict]) -> None:
        for name, module in parts.items():
            module.save_pretrained(self.folder / "checkpoint" / name)
        torch.save(optimizer.state_dict(), self.folder / f"optimizer-{stage}.pt")
        self.state[f"{stage}_step"] = step
        history = self.folder / f"log-{stage}.jsonl"
        with open(history, "a") as file:
            file.writelines(json.dumps(entry) + "\n" for entry in log)
        (self.folder / "state.json").write_text(json.dumps(self.state, indent=2))


def train(stage: str, run: Run, options: TrainOptions, max_steps: int, minutes: float, bank: SceneBank) -> int:
    """Train `stage` until `max_steps` or `minutes` pass; checkpoint and return the step reached."""
    started = time.monotonic()
    torch.manual_seed(options.seed + run.state.get(f"{stage}_step", 0))
    vae = run.part("vae", build_vae)
    if stage == "vae":
        parts = {"vae": vae}
        optimizer = torch.optim.AdamW(vae.parameters(), lr=options.vae_learning_rate)
    else:
        vae.requires_grad_(False).eval()
        parts = {"unet": run.part("unet", build_unet), "text_encoder": run.part("text_encoder", build_text_encoder)}
        optimizer = torch.optim.AdamW([p for part in parts.values() for p in part.parameters()], lr=options.unet_learning_rate)
        scheduler = DDPMScheduler.from_config(SD_V1_SCHEDULER)
        tokenizer = clip_tokenizer()
    saved_optimizer = run.folder / f"optimizer-{stage}.pt"
    if saved_optimizer.is_file():
        optimizer.load_state_dict(torch.load(saved_optimizer, map_location=run.device))
    step, log = run.state.get(f"{stage}_step", 0), []
    while step < max_steps and (time.monotonic() - started) < minutes * 60:
        images, captions = bank.batch(step, options)
        pixels = images * 2 - 1
        if stage == "vae":
            posterior = vae.encode(pixels).latent_dist
            reconstruction = vae.decode(posterior.sample()).sample
            loss = F.l1_loss(reconstruction, pixels) + F.mse_loss(reconstruction, pixels) + options.kl_weight * posterior.kl().mean()
        else:
            with torch.no_grad():
                latents = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
            dropped = torch.rand(len(captions)) < options.caption_dropout
            prompts = ["" if drop else caption for drop, caption in zip(dropped.tolist(), captions)]
            ids = tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
            embeddings = parts["text_encoder"](ids.to(run.device))[0]
            noise = torch.randn_like(latents)
            timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),), device=run.device)
            prediction = parts["unet"](scheduler.add_noise(latents, noise, timesteps), timesteps, encoder_hidden_states=embeddings).sample
            loss = F.mse_loss(prediction, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        log.append({"step": step, "loss": loss.item(), "seconds": time.monotonic() - started})  # one sync a step: fine here
        if step % options.checkpoint_every == 0:
            run.save(parts, optimizer, stage, step, log)
            log = []
    if stage == "vae":
        parts["vae"].register_to_config(scaling_factor=latent_scale(vae, bank, options))
    run.save(parts, optimizer, stage, step, log)
    return step


@torch.no_grad()
def latent_scale(vae: AutoencoderKL, bank: SceneBank, options: TrainOptions) -> float:
    """1 / std of the latents, as SD's 0.18215 was chosen, so the UNet sees unit-variance inputs."""
    images, _ = bank.batch(-1, options)
    return float(1 / vae.encode(images * 2 - 1).latent_dist.mean.std())


def export(run: Run, folder: str | Path) -> Path:
    """Write the fp16 diffusers folder that `load_model(folder)` and `--model folder` read."""
    folder = Path(folder)
    parts = [run.part(name, build).half() for name, build in
             (("unet", build_unet), ("vae", build_vae), ("text_encoder", build_text_encoder))]
    Model(*parts, clip_tokenizer(), dict(SD_V1_SCHEDULER), name="shapes").save(folder)
    (folder / "training.json").write_text(json.dumps({**run.state, "options": asdict(TrainOptions())}, indent=2))
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p2p_real.shapes.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="the run's folder (checkpoints, logs); resumed if it exists")
    parser.add_argument("--stage", choices=("vae", "unet"))
    parser.add_argument("--steps", type=int, default=20_000, help="stop at this step count (default: 20000)")
    parser.add_argument("--minutes", type=float, default=8.0, help="stop and checkpoint after this long (default: 8)")
    parser.add_argument("--batch-size", type=int, default=TrainOptions.batch_size)
    parser.add_argument("--scenes", type=int, default=20_000, help="training scenes (seed 0, indices 0..N-1; default: 20000)")
    parser.add_argument("--workers", type=int, default=None, help="processes drawing the scenes (default: one per core; 0: none)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--export", metavar="DIR", help="write the trained model as a diffusers folder (fp16)")
    args = parser.parse_args(argv)
    run = Run(args.output, args.device)
    if args.stage:
        options = TrainOptions(batch_size=args.batch_size)
        bank = SceneBank.draw(options.seed, args.scenes, args.device, args.workers)
        step = train(args.stage, run, options, args.steps, args.minutes, bank)
        log = run.folder / f"log-{args.stage}.jsonl"
        last = json.loads(log.read_text().splitlines()[-1]) if log.is_file() and log.read_text() else {}
        print(f"{args.stage}: step {step}, loss {last.get('loss', float('nan')):.4f} -> {run.folder}")
    if args.export:
        print(f"exported -> {export(run, args.export)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
