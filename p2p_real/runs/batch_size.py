"""How many photos to invert together: `--batch-size N`, or `auto`, chosen from the GPU memory free
once the model is loaded, by a memory model of inversion.

Peak GPU memory grows about linearly with the batch: each photo adds its activations (and, for
null-text, the backward pass through the UNet), a fixed amount per model family at its own
resolution, scaled by the pixel count at others. The choice keeps a safety margin; a batch that
still runs out of memory is split, never a crash (runs/invert.py). torch is imported only where
the free memory is read, so that checks.py can read the flag before torch loads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import OptionError

if TYPE_CHECKING:
    from ..models import Model

AUTO = "auto"
GIB = 2**30
# Beyond 16 photos a batch, null-text's throughput hardly improves: on an H200 (fp16, CUDA graphs)
# 8 photos took 4.64 s each, 16 took 4.37 s (docs/BENCHMARKS.md, issue 5), and more only costs memory.
MAX_BATCH_SIZE = 16
# Kept free of the batch: the allocator's fragmentation and the fixed costs that do not grow with
# the batch (CUDA-graph pools, cuBLAS workspaces, the VAE's decode).
SAFETY_FRACTION_OF_TOTAL = 0.10
SAFETY_BYTES = 1 * GIB
# Methods that only run the UNet forward: no backward pass, no autograd graph held per step.
FORWARD_ONLY_SHARE = 1 / 3
BACKWARD_METHODS = ("null-text",)
MEASURED_PRECISION_BYTES = 2  # the table below was measured in float16; float32 activations take twice the bytes


@dataclass(frozen=True)
class PhotoMemory:
    """Peak GPU memory of a null-text batch beyond the weights, at the family's own resolution:
    a fixed part (graph pools, the VAE, workspaces) plus a part per photo."""

    reference_resolution: int  # pixels per side
    fixed_gib: float
    per_photo_gib: float


# Measured on an H200 with `benchmarks/peak_memory.py --batch B` (float16, CUDA graphs, whole Adam
# iterations captured; 2026-11-30; docs/BENCHMARKS.md): peak memory reserved, weights excluded,
# rounded up so that every measured batch lies under the line. SD v1 (2.05 GiB of weights):
# 4.62 / 10.47 / 16.68 / 30.68 GiB at batch 1 / 4 / 8 / 16. SDXL (7.37 GiB): 22.43 / 30.19 / 52.24 at 1 / 2 / 4.
# The commands' expandable_segments allocator needs less (SDXL's allocated peak grows 5.1 GiB a photo).
PHOTO_MEMORY = {"sd": PhotoMemory(512, 0.9, 1.8), "sdxl": PhotoMemory(1024, 4.0, 11.0)}


def batch_size_option(value: int | str) -> int | str:
    """A batch size as given (`--batch-size`'s text, or the API's number): a whole number of photos, at
    least 1, or "auto"; else an OptionError (checks.in_flag_terms names the flag)."""
    if value == AUTO:
        return AUTO
    try:
        size = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        raise OptionError("batch_size", f"expected a whole number of photos or auto, got {value!r}") from None
    if size < 1:
        raise OptionError("batch_size", f"must be at least 1, got {size}; pass a whole number of photos or auto")
    return size


def photo_bytes(family: str, resolution: int, method: str, precision_bytes: int = MEASURED_PRECISION_BYTES) -> float:
    """Peak GPU memory one photo adds to a batch of `method` at `resolution` pixels per side."""
    measured = PHOTO_MEMORY[family]
    return measured.per_photo_gib * GIB * memory_scale(measured, resolution, method, precision_bytes)


def fixed_bytes(family: str, resolution: int, method: str, precision_bytes: int = MEASURED_PRECISION_BYTES) -> float:
    """Peak GPU memory of a batch of `method` beyond the weights that does not grow with the batch."""
    measured = PHOTO_MEMORY[family]
    return measured.fixed_gib * GIB * memory_scale(measured, resolution, method, precision_bytes)


def memory_scale(measured: PhotoMemory, resolution: int, method: str, precision_bytes: int) -> float:
    share = 1.0 if method in BACKWARD_METHODS else FORWARD_ONLY_SHARE
    return share * (resolution / measured.reference_resolution) ** 2 * precision_bytes / MEASURED_PRECISION_BYTES


def batch_size_for_memory(free_bytes: float, total_bytes: float, family: str, resolution: int, method: str,
                          photo_count: int, precision_bytes: int = MEASURED_PRECISION_BYTES) -> int:
    """The most photos whose inversion fits in `free_bytes` of a GPU of `total_bytes`, less the
    safety margin; at least 1, at most MAX_BATCH_SIZE and `photo_count`."""
    usable = free_bytes - (SAFETY_FRACTION_OF_TOTAL * total_bytes + SAFETY_BYTES) - fixed_bytes(family, resolution, method, precision_bytes)
    fitting = int(usable // photo_bytes(family, resolution, method, precision_bytes))
    return max(1, min(fitting, MAX_BATCH_SIZE, photo_count))


def choose_batch_size(model: Model, method: str, photo_count: int, free_bytes: float | None = None) -> int:
    """`--batch-size auto`: 1 off CUDA (as the default was: there is no GPU memory to read); on CUDA,
    from the memory free now, with the model's weights loaded. `free_bytes` overrides what is read
    (e.g. a share of a GPU that other work uses too)."""
    if model.device.type != "cuda":
        return 1
    import torch

    if free_bytes is None:
        free_bytes, total_bytes = torch.cuda.mem_get_info(model.device)
        # Memory our own allocator holds but does not use is free to this run, though not to the driver.
        free_bytes += torch.cuda.memory_reserved(model.device) - torch.cuda.memory_allocated(model.device)
    else:
        total_bytes = torch.cuda.get_device_properties(model.device).total_memory
    return batch_size_for_memory(free_bytes, total_bytes, model.family, model.resolution, method, photo_count,
                                 model.dtype.itemsize)
