"""torch.compile's kernels kept between runs, and whether they are there for a model.

Compiling the UNet's passes with gradients takes minutes; Inductor keeps what it made in
TORCHINDUCTOR_CACHE_DIR, which the commands point at $XDG_CACHE_HOME/p2p-real/torch-compile
(~/.cache/...) so that it outlives the run and a reboot's cleaning of /tmp. A run that compiled a
model and inverted with it leaves a small marker there; a later run over a folder finds it and
compiles by default, then paying seconds to load the kernels instead of minutes to make them.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cli.py calls use_compile_cache before torch is imported, which this module must not do
    from ..models import Model


def compile_cache_folder() -> Path:
    """Where `--compile` keeps torch.compile's kernels: $XDG_CACHE_HOME/p2p-real/torch-compile."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "p2p-real" / "torch-compile"


def use_compile_cache() -> None:
    """Point torch.compile at the cache folder for this process, unless the user chose one. Call it
    before torch is imported: importing torch sets the variable to its own default under /tmp."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_folder()))


def warm_marker(model: Model) -> Path:
    """The marker of kernels compiled for this model, weights' precision, size, torch and GPU. Not
    the batch size: after a second size torch compiles one graph for any batch, and keeps it too."""
    described = json.dumps(marker_fields(model), sort_keys=True)
    return compile_cache_folder() / "warm" / f"{hashlib.sha256(described.encode()).hexdigest()[:16]}.json"


def marker_fields(model: Model) -> dict:
    import torch

    return {"model_fingerprint": model.fingerprint, "dtype": str(model.dtype), "resolution": model.resolution,
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else "cpu"}


def is_warm(model: Model) -> bool:
    return warm_marker(model).is_file()


def mark_warm(model: Model) -> None:
    """Say that this model's kernels are compiled (call after a compiled run did some work)."""
    marker = warm_marker(model)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({**marker_fields(model), "model": model.name,
                                  "compiled_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2) + "\n")
