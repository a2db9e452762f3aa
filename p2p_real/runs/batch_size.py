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
    from ..text_encoders import PhotoMemory

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
MEASURED_PRECISION_BYTES = 2  # the adapters' rows were measured in float16; float32 activations take twice the bytes


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


@dataclass(frozen=True)
class InversionMemory:
    """What the memory of an inversion batch depends on: the family's measured row (its text
    adapter's `photo_memory`), the resolution, whether the method runs the UNet backward
    (`METHODS[name].needs_backward`) and the bytes of one activation."""

    measured: PhotoMemory
    resolution: int
    needs_backward: bool = True
    precision_bytes: int = MEASURED_PRECISION_BYTES

    @classmethod
    def of(cls, model: Model, method: str) -> "InversionMemory":
        from ..inversion.methods import METHODS

        return cls(model.text.photo_memory, model.resolution, METHODS[method].needs_backward, model.dtype.itemsize)

    @property
    def scale(self) -> float:
        share = 1.0 if self.needs_backward else FORWARD_ONLY_SHARE
        pixels = (self.resolution / self.measured.reference_resolution) ** 2
        return share * pixels * self.precision_bytes / MEASURED_PRECISION_BYTES

    @property
    def photo_bytes(self) -> float:
        """Peak GPU memory one photo adds to a batch."""
        return self.measured.per_photo_gib * GIB * self.scale

    @property
    def fixed_bytes(self) -> float:
        """Peak GPU memory of a batch beyond the weights that does not grow with the batch."""
        return self.measured.fixed_gib * GIB * self.scale


def batch_size_for_memory(free_bytes: float, total_bytes: float, memory: InversionMemory, photo_count: int) -> int:
    """The most photos whose inversion fits in `free_bytes` of a GPU of `total_bytes`, less the
    safety margin; at least 1, at most MAX_BATCH_SIZE and `photo_count`."""
    usable = free_bytes - (SAFETY_FRACTION_OF_TOTAL * total_bytes + SAFETY_BYTES) - memory.fixed_bytes
    fitting = int(usable // memory.photo_bytes)
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
    return batch_size_for_memory(free_bytes, total_bytes, InversionMemory.of(model, method), photo_count)
