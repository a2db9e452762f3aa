"""How the model's parts are cast and how its VAE is called: helpers of p2p_real/models.py."""
from __future__ import annotations

import torch

from .errors import NumericalError

FLOATING_POINT_CASTS = {torch.float16: "half", torch.bfloat16: "bfloat16", torch.float32: "float",
                        torch.float64: "double"}


def cast_floating_point(part: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast a part's floating-point weights, as `part.to(dtype=...)` does. diffusers' `ModelMixin.to`
    warns that "modules should be kept in float32" whenever a dtype is passed, even for models that
    keep none (its `_keep_in_fp32_modules or []` is never None): SD's UNet and VAE keep none, so
    they are cast with torch's own floating-point casts, which leave integer buffers alone too."""
    keep = getattr(part, "_keep_in_fp32_modules", None)
    if keep:  # a model that does keep some: let the library handle it
        part.to(dtype=dtype)
        if dtype in (torch.float16, torch.bfloat16):
            keep_in_fp32(part, set(keep))
    else:
        getattr(part, FLOATING_POINT_CASTS[dtype])()


def keep_in_fp32(part: torch.nn.Module, names: set[str]) -> None:
    """Put the modules a model asks to keep in float32 back in float32, as transformers'
    `from_pretrained(torch_dtype=...)` does (its `.to` does not): T5's `wo` projections, whose
    activations overflow float16 (SD3's T5-XXL; T5's own forward casts to `wo`'s dtype)."""
    for name, module in part.named_modules():
        if names.intersection(name.split(".")):
            module.float()


VAE_PIXELS_PER_CALL = 1024 * 1024  # one SDXL image, four SD v1 ones: a float32 VAE at 1024 px takes ~3 GB a photo


def vae_chunks(batch: torch.Tensor, image_size) -> tuple[torch.Tensor, ...]:
    """The batch in chunks of at most VAE_PIXELS_PER_CALL pixels (at least one image): the VAE's
    activations at full resolution, not the UNet, set the peak memory of a 1024 px job."""
    per_call = max(1, VAE_PIXELS_PER_CALL // (image_size[0] * image_size[1]))
    return batch.split(per_call)


def check_finite(values: torch.Tensor, doing: str, dtype: torch.dtype) -> torch.Tensor:
    """`values`, or a NumericalError: a VAE that overflows must never hand on NaNs silently."""
    if not torch.isfinite(values).all():
        raise NumericalError(f"the VAE overflowed in {str(dtype).replace('torch.', '')} while {doing} (NaN or inf); "
                             f"keep it in float32 (a VAE config with force_upcast, or --dtype float32)")
    return values
