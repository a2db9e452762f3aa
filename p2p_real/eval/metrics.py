"""Image-quality metrics on (B, 3, H, W) float images in [0, 1], through torchmetrics.

PSNR in dB (higher is better, identical images give +inf); SSIM in [-1, 1] (1 is identical);
MSE in [0, 1] on the [0, 1] scale. Each returns one value per image.
"""
from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


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
