"""Train the small `shapes` text-to-image model on generated scenes, in diffusers/transformers classes
so that `load_model(folder)` reads the result like any SD checkpoint.

Two stages, each resumable and time-boxed (the GPU runs in calls of at most 10 minutes):
  vae   an AutoencoderKL (64 px -> 16x16x4 latents) on reconstruction + a small KL term;
  unet  the UNet and a small CLIP text encoder together, epsilon prediction on the frozen VAE's
        latents, with 10% empty captions so that classifier-free guidance works. An exponential
        moving average of these weights is what gets exported.

    python -m p2p_real.shapes.train --stage vae --minutes 2 --output runs/shapes
    python -m p2p_real.shapes.train --stage unet --minutes 8 --output runs/shapes     # repeat to resume
    python -m p2p_real.shapes.train --export p2p_real/assets/shapes --output runs/shapes
"""
from __future__ import annotations

import argparse
import contextlib
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
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel

from ..models import Model
from ..random_models import SD_V1_SCHEDULER
from ..text_encoders import ClipText
from .scenes import scene_at
from .tokenizer import fitted_tokenizer

IMAGE_SIZE = 64
MAX_TOKENS = 77  # as SD's, so prompts and attention maps have the shapes the editing code expects


@dataclass(frozen=True)
class TrainOptions:
    batch_size: int = 64
    vae_learning_rate: float = 1e-3
    unet_learning_rate: float = 3e-4
    warmup_steps: int = 500
    kl_weight: float = 1e-6  # keeps the latent near a unit Gaussian without blurring (SD's VAE uses ~1e-6)
    caption_dropout: float = 0.1  # empty captions, so the model also learns the unconditional prediction
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_every: int = 1000


def build_vae() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(32, 64, 64), down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, layers_per_block=1, latent_channels=4, norm_num_groups=16,
        sample_size=IMAGE_SIZE, scaling_factor=1.0,  # set from the latents' spread after the VAE stage
    )


def build_text_encoder() -> CLIPTextModel:
    tokenizer = fitted_tokenizer()
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS, hidden_act="quick_gelu", bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))


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
    """Training scenes drawn once, in parallel, and kept on the device with their token ids: the
    CPU renders a scene in about 8 ms, far slower than a training step of this model on a GPU."""

    images: torch.Tensor  # (N, 3, H, W) uint8
    captions: list[str]
    token_ids: torch.Tensor  # (N, MAX_TOKENS)
    empty_ids: torch.Tensor  # (MAX_TOKENS,): the empty caption, for guidance dropout

    @classmethod
    def draw(cls, seed: int, count: int, device, workers: int | None = None, cache: Path | None = None) -> SceneBank:
        """Render scenes (seed, 0..count-1), or read them from `cache` (an .npz) when it holds them."""
        if cache is not None and cache.is_file():
            saved = np.load(cache)
            pixels, captions = saved["pixels"], saved["captions"].tolist()
        else:
            render = partial(scene_pixels, seed)
            if workers == 0:
                drawn = list(map(render, range(count)))
            else:
                with ProcessPoolExecutor(workers) as pool:
                    drawn = list(pool.map(render, range(count), chunksize=64))
            pixels = np.stack([image for image, _ in drawn]).transpose(0, 3, 1, 2)  # (N, 3, H, W)
            captions = [caption for _, caption in drawn]
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cache, pixels=pixels, captions=np.array(captions))
        tokenizer = fitted_tokenizer()
        ids = tokenizer([*captions, ""], padding="max_length", max_length=MAX_TOKENS, truncation=True,
                        return_tensors="pt").input_ids
        images = torch.from_numpy(np.ascontiguousarray(pixels)).to(device)
        return cls(images, captions, ids[:-1].to(device), ids[-1].to(device))

    def pixels(self, selection) -> torch.Tensor:
        """Scenes `selection` (indices or a slice) as float pixels in [-1, 1], the VAE's range."""
        return self.images[selection].float() / 127.5 - 1

    def batch_indices(self, step: int, options: TrainOptions) -> torch.Tensor:
        """Batch `step`'s scenes: drawn from (seed, step) alone, so a resumed run sees what it would have."""
        generator = torch.Generator().manual_seed(options.seed * 1_000_003 + step)
        return torch.randint(len(self.captions), (options.batch_size,), generator=generator)

    def batch(self, step: int, options: TrainOptions) -> tuple[torch.Tensor, list[str]]:
        indices = self.batch_indices(step, options)
        return self.images[indices.to(self.images.device)].float() / 255, [self.captions[i] for i in indices.tolist()]


class Run:
    """A training run's folder: checkpoint/<part>/ (diffusers layout), ema-<part>.safetensors,
    optimizer-<stage>.pt, log-<stage>.jsonl, state.json."""

    def __init__(self, folder: str | Path, device: str, init_from: str | Path | None = None):
        self.folder = Path(folder)
        self.device = device
        # An exported model to start from when the run has no checkpoint of a part: a later session
        # can go on training the shipped weights (only fp16 weights come back from the device tool,
        # not the run's fp32 checkpoint and optimiser state).
        self.init_from = Path(init_from) if init_from else None
        state_file = self.folder / "state.json"
        self.state = json.loads(state_file.read_text()) if state_file.is_file() else {}

    def part(self, name: str, build, averaged: bool = False):
        """A part as last saved (its moving average if `averaged` and one exists), or built new."""
        saved = self.folder / "checkpoint" / name
        classes = {"vae": AutoencoderKL, "unet": UNet2DConditionModel, "text_encoder": CLIPTextModel}
        if not saved.is_dir() and self.init_from is not None and (self.init_from / name).is_dir():
            saved = self.init_from / name
        module = classes[name].from_pretrained(saved).float() if saved.is_dir() else build()
        average = self.folder / f"ema-{name}.safetensors"
        if averaged and average.is_file():
            module.load_state_dict(load_file(average), strict=False)  # parameters only; buffers as saved
        return module.to(self.device)

    def save(self, parts: dict, optimizer, stage: str, step: int, log: list[dict],
             averages: dict | None = None) -> None:
        for name, module in parts.items():
            module.save_pretrained(self.folder / "checkpoint" / name)
        for name, average in (averages or {}).items():
            save_file({key: value.contiguous() for key, value in average.items()},
                      self.folder / f"ema-{name}.safetensors")
        torch.save(optimizer.state_dict(), self.folder / f"optimizer-{stage}.pt")
        self.state[f"{stage}_step"] = step
        with open(self.folder / f"log-{stage}.jsonl", "a") as file:
            file.writelines(json.dumps(entry) + "\n" for entry in log)
        (self.folder / "state.json").write_text(json.dumps(self.state, indent=2))


@torch.no_grad()
def encode_bank(vae: AutoencoderKL, bank: SceneBank, chunk: int = 512) -> torch.Tensor:
    """(2, N, 4, h, w) scaled latent means of every scene and of its mirror image (captions have no
    left or right, so mirroring doubles the data), encoded once instead of at every step."""
    scale = vae.config.scaling_factor
    latents = [[], []]
    for start in range(0, len(bank.images), chunk):
        pixels = bank.pixels(slice(start, start + chunk))
        for side, view in enumerate((pixels, pixels.flip(-1))):
            latents[side].append(vae.encode(view).latent_dist.mean * scale)
    return torch.stack([torch.cat(side) for side in latents])


def train(stage: str, run: Run, options: TrainOptions, max_steps: int, minutes: float, bank: SceneBank) -> int:
    """Train `stage` until `max_steps` or `minutes` pass; checkpoint and return the step reached."""
    started = time.monotonic()
    device = torch.device(run.device)
    torch.manual_seed(options.seed + run.state.get(f"{stage}_step", 0))
    # bf16 autocast on the GPU (weights, optimiser and loss stay fp32); full fp32 on the CPU.
    autocast = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    vae = run.part("vae", build_vae)
    averages = {}
    if stage == "vae":
        parts = {"vae": vae}
        learning_rate = options.vae_learning_rate
    else:
        vae.requires_grad_(False).eval()
        parts = {"unet": run.part("unet", build_unet), "text_encoder": run.part("text_encoder", build_text_encoder)}
        learning_rate = options.unet_learning_rate
        scheduler = DDPMScheduler.from_config(SD_V1_SCHEDULER)
        alphas_cumprod = scheduler.alphas_cumprod.to(device)
        latents_bank = encode_bank(vae, bank)
        for name, module in parts.items():
            saved = run.folder / f"ema-{name}.safetensors"
            state = load_file(saved, device=str(device)) if saved.is_file() else dict(module.named_parameters())
            averages[name] = {key: value.detach().clone() for key, value in state.items()}
    parameters = [p for part in parts.values() for p in part.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate)
    saved_optimizer = run.folder / f"optimizer-{stage}.pt"
    if saved_optimizer.is_file():
        optimizer.load_state_dict(torch.load(saved_optimizer, map_location=device))
    step, log = run.state.get(f"{stage}_step", 0), []
    while step < max_steps and (time.monotonic() - started) < minutes * 60:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * min(1.0, (step + 1) / options.warmup_steps)
        indices = bank.batch_indices(step, options).to(device)
        with autocast:
            if stage == "vae":
                pixels = bank.pixels(indices)
                posterior = vae.encode(pixels).latent_dist
                reconstruction = vae.decode(posterior.sample()).sample.float()
                loss = (F.l1_loss(reconstruction, pixels) + F.mse_loss(reconstruction, pixels)
                        + options.kl_weight * posterior.kl().mean())
            else:
                mirrored = torch.randint(2, (len(indices),), device=device)
                latents = latents_bank[mirrored, indices]
                dropped = torch.rand(len(indices), device=device) < options.caption_dropout
                ids = torch.where(dropped[:, None], bank.empty_ids, bank.token_ids[indices])
                embeddings = parts["text_encoder"](ids)[0]
                noise = torch.randn_like(latents)
                timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),), device=device)
                alpha = alphas_cumprod[timesteps].view(-1, 1, 1, 1)
                noisy = alpha.sqrt() * latents + (1 - alpha).sqrt() * noise
                prediction = parts["unet"](noisy, timesteps, encoder_hidden_states=embeddings).sample.float()
                loss = F.mse_loss(prediction, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for name, module in parts.items() if averages else ():
            current = dict(module.named_parameters())
            average = averages[name]
            torch._foreach_lerp_(list(average.values()), [current[key].detach() for key in average],
                                 1 - options.ema_decay)
        step += 1
        if step % 25 == 0 or step == max_steps:  # .item() syncs the GPU: now and then only
            log.append({"step": step, "loss": loss.item(), "seconds": round(time.monotonic() - started, 2)})
        if step % options.checkpoint_every == 0:
            run.save(parts, optimizer, stage, step, log, averages)
            log = []
    if not log or log[-1]["step"] != step:
        log.append({"step": step, "loss": loss.item() if step else float("nan"),
                    "seconds": round(time.monotonic() - started, 2)})
    if stage == "vae":
        parts["vae"].register_to_config(scaling_factor=latent_scale(vae, bank))
    run.save(parts, optimizer, stage, step, log, averages)
    return step


@torch.no_grad()
def latent_scale(vae: AutoencoderKL, bank: SceneBank, count: int = 512) -> float:
    """1 / std of the latents, as SD's 0.18215 was chosen, so the UNet sees unit-variance inputs."""
    return float(1 / vae.encode(bank.pixels(slice(0, count))).latent_dist.mean.std())


def export(run: Run, folder: str | Path) -> Path:
    """Write the fp16 diffusers folder that `load_model(folder)` and `--model folder` read: the
    moving averages of the UNet and text encoder where the run has them."""
    folder = Path(folder)
    parts = [run.part(name, build, averaged=True).half() for name, build in
             (("unet", build_unet), ("vae", build_vae), ("text_encoder", build_text_encoder))]
    Model(parts[0], parts[1], ClipText(parts[2], fitted_tokenizer()), dict(SD_V1_SCHEDULER), name="shapes").save(folder)
    (folder / "training.json").write_text(json.dumps({**run.state, "options": asdict(TrainOptions())}, indent=2))
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p2p_real.shapes.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="the run's folder (checkpoints, logs); resumed if it exists")
    parser.add_argument("--stage", choices=("vae", "unet"))
    parser.add_argument("--steps", type=int, default=100_000, help="stop at this step count (default: 100000)")
    parser.add_argument("--minutes", type=float, default=8.0, help="stop and checkpoint after this long (default: 8)")
    parser.add_argument("--batch-size", type=int, default=TrainOptions.batch_size)
    parser.add_argument("--scenes", type=int, default=20_000,
                        help="training scenes (seed 0, indices 0..N-1; default: 20000)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes drawing the scenes (default: one per core; 0: none)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--export", metavar="DIR", help="write the trained model as a diffusers folder (fp16)")
    parser.add_argument("--init-from", metavar="DIR",
                        help="start parts the run has no checkpoint of from this exported model, "
                             "e.g. p2p_real/assets/shapes (a fresh optimiser)")
    args = parser.parse_args(argv)
    run = Run(args.output, args.device, args.init_from)
    if args.stage:
        options = TrainOptions(batch_size=args.batch_size)
        cache = run.folder / f"scenes-{options.seed}-{args.scenes}.npz"
        bank = SceneBank.draw(options.seed, args.scenes, args.device, args.workers, cache=cache)
        step = train(args.stage, run, options, args.steps, args.minutes, bank)
        log = run.folder / f"log-{args.stage}.jsonl"
        last = json.loads(log.read_text().splitlines()[-1]) if log.is_file() and log.read_text() else {}
        print(f"{args.stage}: step {step}, loss {last.get('loss', float('nan')):.4f} -> {run.folder}", flush=True)
    if args.export:
        print(f"exported -> {export(run, args.export)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
