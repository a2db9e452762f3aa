"""GPU seconds for N Prompt-to-Prompt edits of one inversion: one batched pass (`edit()` with N
targets: rows uncond x (N+1), source, targets) against N one-target passes, and eager against CUDA graphs.

    python benchmarks/edit_batch.py --model sd-v1-random --counts 1,4,8 --json $OUT/edit_batch.json

Each time is a whole `edit()` call: plan, text embeddings, sampling (graph capture included, since
a capture serves one edit), VAE decode; median of --repeats after one warm-up, CUDA-synchronised.
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

from p2p_real import EditOptions, edit, invert, load_image, load_model  # noqa: E402

SOURCE = "a close-up photo of a tabby cat"
EDITS = [  # eight different edits: swaps, refinements, re-weightings, LocalBlend, word windows
    ("a close-up photo of a tabby dog", EditOptions(blend_words=("cat", "dog"))),
    ("a close-up photo of a fluffy tabby cat", EditOptions()),
    (SOURCE, EditOptions(reweights={"tabby": 2.0})),
    ("a close-up photo of a tabby fox", EditOptions(cross_replace_steps={"default_": 0.4, "fox": (0.0, 0.8)})),
    ("a close-up photo of a sleeping tabby cat", EditOptions(self_replace_steps=0.4)),
    ("a close-up photo of a tabby tiger", EditOptions(blend_words=("cat", "tiger"))),
    (SOURCE, EditOptions(reweights={"close-up": -1.0})),
    ("a watercolor photo of a tabby cat", EditOptions(cross_replace_steps=0.8)),
]


def timed(function, repeats: int) -> tuple[float, float]:
    function()  # warm-up: kernels, allocator, cuDNN plans
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), torch.cuda.max_memory_allocated() / 2**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sd-v1-random")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--counts", default="1,4,8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    counts = [int(count) for count in args.counts.split(",")]
    graphed = load_model(args.model)  # float16, channels-last, CUDA graphs: the CLI's defaults on a GPU
    eager = load_model(args.model, cuda_graphs=False)
    photo = load_image(Path(__file__).resolve().parents[1] / "data/photos/chelsea.jpg", graphed.resolution)
    [inversion] = invert(graphed, [photo], [SOURCE], method="ddim", num_steps=args.steps)
    rows = []
    for count in counts:
        targets, options = [target for target, _ in EDITS[:count]], [option for _, option in EDITS[:count]]
        for name, model in (("graphs", graphed), ("eager", eager)):
            batched, batched_peak = timed(lambda: edit(model, inversion, targets, options), args.repeats)
            one_by_one, single_peak = timed(lambda: [edit(model, inversion, t, o) for t, o in zip(targets, options)],
                                            args.repeats)
            rows.append({"edits": count, "mode": name, "batched_s": batched, "one_by_one_s": one_by_one,
                         "batched_s_per_edit": batched / count, "speedup": one_by_one / batched,
                         "batched_peak_gib": batched_peak, "one_by_one_peak_gib": single_peak})
            print(f"{count} edit(s), {name:>6}: batched {batched:6.2f} s ({batched / count:5.2f} s/edit, "
                  f"peak {batched_peak:5.1f} GiB)  one by one {one_by_one:6.2f} s (peak {single_peak:5.1f} GiB)  "
                  f"-> {one_by_one / batched:4.2f}x", flush=True)
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "model": args.model,
              "dtype": str(graphed.dtype), "steps": args.steps, "repeats": args.repeats, "rows": rows,
              "note": "random weights: speed and memory only"}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
