"""Peak GPU memory of one 512x512 null-text inversion, in a fresh process, through the public API
(load_model + invert), with the full-size SD v1 architecture (random weights).

    python benchmarks/peak_memory.py --dtype float16
"""
import argparse
import json
import os

import numpy as np
import torch
from PIL import Image

from p2p_real import invert, load_model

parser = argparse.ArgumentParser()
parser.add_argument("--dtype", default="float16")
parser.add_argument("--steps", type=int, default=10, help="memory does not grow with the step count")
parser.add_argument("--batch", type=int, default=1)
args = parser.parse_args()
model = load_model("sd-v1-random", device="cuda", dtype=args.dtype)
weights = torch.cuda.memory_allocated() / 2**30
rng = np.random.default_rng(0)
photos = [Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)) for _ in range(args.batch)]
torch.cuda.reset_peak_memory_stats()
invert(model, photos, ["a cat sitting on a wooden floor"] * args.batch, "null-text", args.steps)
result = {"dtype": args.dtype, "batch": args.batch, "weights_gib": weights,
          "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
          "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30, "device": torch.cuda.get_device_name()}
print(json.dumps(result))
with open(os.path.join(os.environ.get("OUT", "."), f"peak_memory_{args.dtype}_b{args.batch}.json"), "w") as file:
    json.dump(result, file)
