"""Null-text inversion seconds per photo without a LoRA, with a LoRA fused into the weights (what
`--lora` does), and with the same LoRA kept as peft adapters (what `load_model(pipe)` runs for a
pipeline holding an unfused LoRA): the cost of each way.

    python benchmarks/lora_speed.py --model sd-v1-random --out $OUT/lora_speed.json    # CUDA, 50 steps
    python benchmarks/lora_speed.py --model tiny-random --steps 3 --repeats 1 --out /tmp/lora.json  # CPU smoke

The LoRA is random (rank --rank on the UNet's attention projections and the text encoder's), built
with peft for the model's architecture and saved as a file, as a trained one would be; speed does
not depend on its values. Each time is one `invert()` of one photo (null-text, 10 Adam steps per
timestep with the early stop off, so that each way does the same work: how soon the loss falls
depends on the weights), median of --repeats after one warm-up; on CUDA, float16 with CUDA graphs,
as the CLI runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import DDIMScheduler, StableDiffusionPipeline  # noqa: E402
from diffusers.utils import convert_state_dict_to_diffusers  # noqa: E402
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model  # noqa: E402

from p2p_real import NullTextOptions, invert, load_image, load_model  # noqa: E402
from p2p_real.random_models import BUILDERS  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "data" / "photos" / "chelsea.jpg"
CAPTION = "a close-up photo of a tabby cat"
FIXED_WORK = NullTextOptions(early_stop_epsilon=-1.0)  # a negative threshold never stops early


def write_lora(model_name: str, rank: int, folder: Path) -> Path:
    """A random LoRA of `rank` for the model's UNet attention and text encoder, as a diffusers LoRA file."""
    scratch = BUILDERS[model_name](seed=1, device="cuda" if torch.cuda.is_available() else None)
    layers, generator = {}, torch.Generator().manual_seed(0)
    for name, part, targets in (("unet", scratch.unet, ["to_q", "to_k", "to_v", "to_out.0"]),
                                ("text_encoder", scratch.text.encoder, ["q_proj", "k_proj", "v_proj", "out_proj"])):
        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets), part)
        for parameter_name, parameter in part.named_parameters():
            if "lora_B" in parameter_name:
                parameter.data = 0.01 * torch.randn(parameter.shape, generator=generator).to(parameter.device)
        layers[name] = {key: value.cpu() for key, value in
                        convert_state_dict_to_diffusers(get_peft_model_state_dict(part)).items()}
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers["unet"],
                                              text_encoder_lora_layers=layers["text_encoder"],
                                              weight_name="random_lora.safetensors")
    return folder / "random_lora.safetensors"


def with_adapters(model_name: str, lora: Path, device: torch.device):
    """The model with the LoRA loaded as peft adapters (not fused), through a pipeline it is then read from."""
    base = load_model(model_name, device=device, cuda_graphs=False)
    pipeline = base.text.pipeline(base.unet, base.vae, DDIMScheduler.from_config(base.scheduler_config))
    pipeline.load_lora_weights(str(lora.parent), weight_name=lora.name)
    return load_model(pipeline)


def seconds_per_photo(model, steps: int, repeats: int) -> float:
    image = load_image(PHOTO, model.resolution)

    def run():
        invert(model, [image], [CAPTION], num_steps=steps, options=FIXED_WORK)
        if model.device.type == "cuda":
            torch.cuda.synchronize()

    run()  # warm-up: graph capture, kernels, allocator
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sd-v1-random", choices=sorted(BUILDERS))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        lora = write_lora(args.model, args.rank, Path(folder))
        for way, build in (("none", lambda: load_model(args.model, device=device)),
                           ("fused", lambda: load_model(args.model, device=device, loras=[(str(lora), 1.0)])),
                           ("adapters", lambda: with_adapters(args.model, lora, device))):
            model = build()
            results[way] = seconds_per_photo(model, args.steps, args.repeats)
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    record = {"model": args.model, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "steps": args.steps, "rank": args.rank, "repeats": args.repeats, "seconds_per_photo": results}
    print(f"{args.model} on {record['device']}, {args.steps} steps, LoRA rank {args.rank}: null-text seconds per photo")
    for way, seconds in results.items():
        print(f"  {way:9s} {seconds:8.2f} s  ({seconds / results['none']:.2f}x no LoRA)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
