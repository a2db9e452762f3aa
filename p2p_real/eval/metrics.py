"""Image-quality metrics on (B, 3, H, W) float images in [0, 1], through torchmetrics.

PSNR in dB (higher is better, identical images give +inf); SSIM in [-1, 1] (1 is identical);
MSE in [0, 1] on the [0, 1] scale. Each returns one value per image.

Masks are (B, 1, H, W) floats in {0, 1}, 1 marking the edited region. PIE-Bench (Ju et al. 2024,
cure-lab/PnPInversion, evaluation/evaluate.py) scores "background preservation" by multiplying
*both* images by (1 - mask) and running the whole-image metric on the products, here
`psnr(background(edited, mask), background(source, mask))`, and the "edited-part CLIP score"
on `masked(edited, mask)`. The zeroed pixels count as perfect agreement, so background MSE is a
mean over the whole image (not over background pixels only) and depends on the mask's area; that
is PIE-Bench's definition, kept so that numbers compare. PIE-Bench reports NaN where the mask
covers nothing or everything, and marks the image's one-pixel border as edited when decoding masks.
"""
from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def masked(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The images with everything outside the mask set to black (PIE-Bench's "edit part")."""
    return images * mask.to(device=images.device, dtype=images.dtype)


def background(images: torch.Tensor, edit_mask: torch.Tensor) -> torch.Tensor:
    """The images with the edited region set to black (PIE-Bench's "unedit part")."""
    return images * (1 - edit_mask.to(device=images.device, dtype=images.dtype))


def mse(images: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    return (images.float() - references.float()).pow(2).flatten(1).mean(1)


def psnr(images: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    return peak_signal_noise_ratio(
        images.float(), references.float(), data_range=1.0, reduction="none", dim=(1, 2, 3)
    )


def ssim(images: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    return structural_similarity_index_measure(images.float(), references.float(), data_range=1.0, reduction="none")


def reconstruction_metrics(images: torch.Tensor, references: torch.Tensor) -> list[dict[str, float]]:
    """PSNR, SSIM and MSE of each image against its reference, as plain floats."""
    values = {"psnr": psnr(images, references), "ssim": ssim(images, references), "mse": mse(images, references)}
    return [{name: float(column[index]) for name, column in values.items()} for index in range(images.shape[0])]
