"""Time one 512x512 inversion on the GPU with the full-size SD v1 architecture (random weights).

Speed and memory do not depend on weight values, so random weights stand in for the real ones,
which cannot be downloaded here. Prints a table and writes JSON to $OUT (or the current folder).

    python benchmarks/invert_gpu.py [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from gpu_speed import median_timed  # noqa: E402

from p2p_real.inversion.ddim import ddim_invert
from p2p_real.inversion.options import NullTextOptions
from p2p_real.loading import load_model
from p2p_real.pipeline import invert


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    started = time.time()
    # the plain path, as first measured
    model = load_model("sd-v1-random", device="cuda", dtype="float32", cuda_graphs=False)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
    prompt = "a cat sitting on a wooden floor"
    latents = model.encode(torch.from_numpy(np.asarray(photo)).permute(2, 0, 1)[None].float().cuda() / 255)
    conditional = model.embed([prompt])
    schedule = model.schedule(args.steps)
    rows = []

    weights = torch.cuda.memory_allocated() / 2**30  # peaks below are reported with the weights included
    seconds, peak, _ = median_timed(lambda: ddim_invert(model.denoise, latents, conditional, schedule), args.repeats)
    peak += weights
    rows.append({"what": "DDIM inversion (latents only)", "seconds": seconds, "peak_gib": peak})
    for label, options in [
        ("null-text, paper defaults (early stop on)", NullTextOptions()),
        ("null-text, 10 inner steps always (no early stop)",
         NullTextOptions(early_stop_epsilon=-1.0, early_stop_slope=0.0)),
    ]:
        seconds, peak, [inversion] = median_timed(
            lambda options=options: invert(model, [photo], [prompt], "null-text", args.steps, 7.5, options),
            args.repeats)
        peak += weights
        rows.append({"what": label, "seconds": seconds, "peak_gib": peak,
                     "latent_mse": inversion.metrics["latent_mse"]})

    device = torch.cuda.get_device_name()
    print(f"\ndevice: {device}; torch {torch.__version__}; full-size SD v1, random weights, fp32, 512x512, "
          f"{args.steps} steps, batch 1")
    print(f"{'what':<52} {'seconds':>9} {'peak GiB':>9}")
    for row in rows:
        print(f"{row['what']:<52} {row['seconds']:>9.2f} {row['peak_gib']:>9.2f}")
    out = os.environ.get("OUT", ".")
    with open(os.path.join(out, "invert_gpu.json"), "w") as file:
        json.dump({"device": device, "torch": torch.__version__, "steps": args.steps, "repeats": args.repeats,
                   "rows": rows, "wall_seconds": time.time() - started}, file, indent=2)


if __name__ == "__main__":
    main()
