"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"),
through the `lpips` package: the distance between ImageNet-network features of two images,
weighted by linear layers fitted to human judgements.

Range: 0 for identical images, growing with perceptual difference, typically below 1. PIE-Bench
reports it x 10^3, with the SqueezeNet backbone (torchmetrics' `net_type="squeeze"`).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..errors import MetricLoadError
from ..hub import first_line, host_reachable

NETS = ("alex", "squeeze")
WEIGHTS = ("pretrained", "random")


class LPIPS:
    """`LPIPS(net, weights, device)(images, references)` -> (B,) distances; images (B, 3, H, W) in [0, 1].

    weights="pretrained": the ImageNet backbone from torchvision (downloaded once into
    $TORCH_HOME/hub/checkpoints/) and the package's linear layers; the real metric.
    weights="random": a randomly initialised backbone (seed 0) under the same linear layers, for
    offline smoke tests of the plumbing only; its values mean nothing.
    """

    def __init__(self, net: str = "alex", weights: str = "pretrained", device: str | torch.device | None = None):
        if net not in NETS:
            raise ValueError(f"LPIPS net {net!r}: choose from {', '.join(NETS)}")
        if weights not in WEIGHTS:
            raise ValueError(f"LPIPS weights {weights!r}: choose from {', '.join(WEIGHTS)}")
        try:
            import lpips
        except ImportError:
            raise MetricLoadError("LPIPS needs the lpips package: pip install lpips") from None

        self.net, self.weights = net, weights
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        with warnings.catch_warnings():
            # lpips builds its trunk with torchvision's deprecated `pretrained=` argument.
            warnings.filterwarnings("ignore", message=".*(pretrained|weight enum).*", category=UserWarning)
            if weights == "pretrained":
                network = build_pretrained(net)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    network = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
        self.network = network.eval().requires_grad_(False).to(device)

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """(B,) distances, on the device of `images`."""
        if images.shape != references.shape:
            raise ValueError(f"LPIPS: images {tuple(images.shape)} and references {tuple(references.shape)} "
                             f"differ in shape")
        # lpips expects [-1, 1].
        first = images.to(self.device, torch.float32) * 2 - 1
        second = references.to(self.device, torch.float32) * 2 - 1
        return self.network(first, second).flatten().to(images.device)  # (B, 1, 1, 1) -> (B,)


def build_pretrained(net: str):
    """lpips.LPIPS with torchvision's ImageNet backbone, or a MetricLoadError saying where to put it."""
    import lpips
    from torchvision.models import AlexNet_Weights, SqueezeNet1_1_Weights

    # lpips builds its trunk with tv.alexnet(pretrained=True) / tv.squeezenet1_1(pretrained=True).
    url = {"alex": AlexNet_Weights.IMAGENET1K_V1, "squeeze": SqueezeNet1_1_Weights.IMAGENET1K_V1}[net].url
    checkpoint = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)

    def failure(problem: str) -> MetricLoadError:
        return MetricLoadError(
            f"LPIPS ({net}): {problem}; download {url} on a machine with internet into "
            f"{checkpoint.parent} ($TORCH_HOME/hub/checkpoints/, by default ~/.cache/torch/hub/checkpoints/)"
        )

    # torch.hub downloads without a timeout, so a firewall that drops packets would hang it: test first.
    if not checkpoint.is_file() and not host_reachable(url):
        raise failure(f"torchvision's ImageNet weights {checkpoint.name} are not cached and "
                      f"{urlparse(url).hostname} is unreachable from here")
    try:
        return lpips.LPIPS(net=net, verbose=False)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a bad hash or file, a RuntimeError
        raise failure(f"could not load torchvision's ImageNet weights {checkpoint.name} "
                      f"({first_line(error)})") from None
