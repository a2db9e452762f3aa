"""The compute device, named and waited for, as timings and records need it."""
from __future__ import annotations

import torch


def device_name(device: torch.device) -> str:
    """The GPU's name ("NVIDIA H200"), or "CPU": what a timing was measured on."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock time includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
