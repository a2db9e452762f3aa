"""Where a null-text inversion's GPU time goes, by stage, in one run: DDIM inversion, the
optimisation, the shared `reconstruct()` sampling (since issue 11 every method's reconstruction is
sampled, null-text's too), and the whole `invert()` call (encode, all of the above, decode, metrics).

    python benchmarks/invert_parts.py --model sd-v1-random --json $OUT/invert_parts.json

Full-size SD v1 with random weights: early stop never triggers, so every timestep takes all its
inner steps (speed only). Medians of --repeats after one warm-up, CUDA-synchronised.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2p_real import load_image, load_model  # noqa: E402
from p2p_real.images import to_tensor  # noqa: E402
from p2p_real.inversion.ddim import ddim_invert  # noqa: E402
from p2p_real.inversion.methods import METHODS, reconstruct  # noqa: E402
from p2p_real.pipeline import invert  # noqa: E402

PROMPT = "a close-up photo of a tabby cat"


def median_seconds(function, repeats: int) -> float:
    function()
    seconds = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        function()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sd-v1-random")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = load_model(args.model)
    photo = load_image(Path(__file__).resolve().parents[1] / "data/photos/chelsea.jpg", model.resolution)
    schedule = model.schedule(args.steps)
    latents = model.encode(to_tensor([photo]).to(model.device))
    conditional, unconditional = model.embed([PROMPT]), model.embed([""])
    trajectory = ddim_invert(model.denoise, latents, conditional, schedule)
    result = METHODS["null-text"](model.denoise, trajectory, conditional, unconditional, schedule, 7.5)
    rows = {
        "ddim_invert": median_seconds(lambda: ddim_invert(model.denoise, latents, conditional, schedule), args.repeats),
        "null_text_optimisation": median_seconds(
            lambda: METHODS["null-text"](model.denoise, trajectory, conditional, unconditional, schedule, 7.5),
            args.repeats),
        "reconstruct": median_seconds(
            lambda: reconstruct(model.denoise, trajectory[-1], conditional, result, schedule, 7.5), args.repeats),
        "invert_whole": median_seconds(lambda: invert(model, [photo], [PROMPT], num_steps=args.steps), args.repeats),
    }
    for name, seconds in rows.items():
        print(f"{name:<24}{seconds:8.3f} s  {seconds / rows['invert_whole']:6.1%} of invert()")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                                         "model": args.model, "dtype": str(model.dtype), "steps": args.steps,
                                         "seconds": rows, "note": "random weights: speed only"}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
