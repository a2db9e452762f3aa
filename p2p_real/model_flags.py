"""The model options every verb shares: which model (by name, folder, single file), its LoRAs,
and where and how it runs."""
from __future__ import annotations

import argparse

from .defaults import BUILTIN_MODELS, DEFAULT_MODEL, DTYPE_CHOICES


def add_model_options(group) -> None:
    """--model and what goes with it, into an argparse group."""
    group.add_argument("--model", metavar="NAME_OR_PATH", help=f"hub id, local diffusers folder or single-file "
                       f"checkpoint (.safetensors), SD 1.x, 2.x or SDXL (default: {DEFAULT_MODEL}; editing an "
                       f"artifact folder: the model it was made with); built-in: {', '.join(BUILTIN_MODELS)}")
    group.add_argument("--lora", action="append", metavar="FILE[:SCALE]", help="a LoRA .safetensors file fused into "
                       "the model's weights at SCALE (default: 1); repeatable, applied in order")
    group.add_argument("--prediction-type", choices=("epsilon", "v_prediction"), help="what the UNet predicts, which "
                       "a single file cannot tell (default: v_prediction for SD 2.x files, else the model's config)")
    group.add_argument("--model-config", metavar="DIR", help="a single file's diffusers config folder, for another "
                       "architecture (default: SD 1.5's, 2.1's or SDXL base's, shipped)")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: cuda if available)")
    group.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help="weights' precision (default: auto, "
                       "float16 on a GPU and float32 on the CPU; on a GPU float16 is about 5x faster than float32 at "
                       "the same reconstruction error, bfloat16 as fast but less accurate)")
    group.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                       help="on a GPU, run the UNet eagerly instead of replaying CUDA graphs (slower, same results)")
    group.add_argument("--compile", action=argparse.BooleanOptionalAction, help="on a GPU, run null-text's backward "
                       "passes through torch.compile: about 1.3x faster after minutes of compiling once per machine "
                       "(kept in ~/.cache/p2p-real/torch-compile) (default: on for a folder once that cache holds the "
                       "model's kernels)")
