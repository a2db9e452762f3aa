"""Peak GPU memory of one null-text inversion and one edit of it, in a fresh process, through the
public API (load_model + invert + edit), with a full-size architecture (random weights): everything
included (weights, text encoders, VAE, CUDA-graph pools, the allocator's cache).

    python benchmarks/peak_memory.py --dtype float16                       # SD v1, 512 px
    python benchmarks/peak_memory.py --model sdxl-random                   # SDXL, 1024 px
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from PIL import Image

from p2p_real import EditOptions, edit, invert, load_model

parser = argparse.ArgumentParser()
parser.add_argument("--dtype", default="float16")
parser.add_argument("--model", default="sd-v1-random")
parser.add_argument("--limit-gib", type=float, default=None,
                    help="cap this process's GPU memory (torch.cuda.set_per_process_memory_fraction): "
                         "the job must run within it")
parser.add_argument("--steps", type=int, default=10, help="memory does not grow with the step count")
parser.add_argument("--batch", type=int, default=1)
parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false")
parser.add_argument("--offload-text", action="store_true",
                    help="load_model(offload_text_encoders=True), as on a GPU under 24 GiB")
args = parser.parse_args()
if args.limit_gib:
    torch.cuda.set_per_process_memory_fraction(args.limit_gib * 2**30
                                               / torch.cuda.get_device_properties(0).total_memory)
started = time.perf_counter()
model = load_model(args.model, device="cuda", dtype=args.dtype, cuda_graphs=args.cuda_graphs,
                   offload_text_encoders=args.offload_text)
weights = torch.cuda.memory_allocated() / 2**30
load_reserved = torch.cuda.max_memory_reserved() / 2**30
rng = np.random.default_rng(0)
size = model.resolution
photos = [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(args.batch)]
torch.cuda.reset_peak_memory_stats()
[inversion, *_] = invert(model, photos, ["a cat sitting on a wooden floor"] * args.batch, "null-text", args.steps)
after_invert = torch.cuda.max_memory_reserved() / 2**30
invert_seconds = time.perf_counter() - started
edit(model, inversion, "a dog sitting on a wooden floor", EditOptions(blend_words=("cat", "dog")))
result = {"model": args.model, "cuda_graphs": args.cuda_graphs, "offload_text_encoders": args.offload_text,
          "limit_gib": args.limit_gib, "seconds_to_load_and_invert": invert_seconds, "dtype": args.dtype,
          "batch": args.batch, "weights_gib": weights,
          "load_peak_reserved_gib": load_reserved, "invert_peak_reserved_gib": after_invert,
          "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
          "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30, "device": torch.cuda.get_device_name()}
print(json.dumps(result))
with open(os.path.join(os.environ.get("OUT", "."),
                       f"peak_memory_{args.model}_{args.dtype}_b{args.batch}"
                       f"{f'_limit{args.limit_gib:g}' if args.limit_gib else ''}{'' if args.cuda_graphs else '_eager'}"
                       f"{'_offload' if args.offload_text else ''}.json"), "w") as file:
    json.dump(result, file)
