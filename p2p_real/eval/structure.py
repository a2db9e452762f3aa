"""Structure distance (Tumanyan et al. 2022, "Splicing ViT Features for Semantic Appearance
Transfer"), PIE-Bench's measure of how well an edit keeps the source's layout.

Each image goes through DINO ViT-B/8 (facebook/dino-vitb8); the keys of the last layer's
self-attention (all heads concatenated, one vector per token, the CLS token included, as Splice's
and PnPInversion's `VitExtractor.get_keys_self_sim_from_input(img, layer_num=11)` take them) give a
(T, T) matrix of cosine similarities between all token pairs. The distance is the mean squared
difference of the two images' matrices: 0 for identical structure, at most 4 (cosines lie in
[-1, 1]); PIE-Bench reports it x 10^3. Appearance (colour, texture) barely moves it.

Input as in PnPInversion's LossG: shorter side resized to 224 (bilinear, longer side at most 480),
normalised with ImageNet's mean and std. PIE-Bench's evaluate.py hands this metric 0-255 pixel
values (it divides by 255 for every other metric, not this one), normalised as if in [0, 1], and its
torchvision (0.13) resizes tensors without antialiasing; pixel_scale=255, antialias=False reproduce
its published numbers (eval/pie_bench_protocol.py does so for `bench edit`). The defaults, 1 and
True, are the input Splice intended.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import ViTConfig, ViTModel

from ..errors import MetricLoadError
from ..hub import load_local_first
from .preprocess import resize_shorter_side

DEFAULT_DINO = "facebook/dino-vitb8"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class StructureDistance:
    """`StructureDistance.load()(images, references)` -> (B,) distances; images (B, 3, H, W) in [0, 1]."""

    model: ViTModel
    size: int = 224  # shorter side fed to DINO (Splice's dino_global_patch_size)
    max_size: int = 480  # cap on the longer side (PnPInversion: Resize(224, max_size=480))
    pixel_scale: float = 1.0  # 255 reproduces PIE-Bench's published numbers (see the module docstring)
    antialias: bool = True  # False: PIE-Bench's resize (torchvision 0.13's tensor Resize had no antialiasing)
    name: str = ""

    def __post_init__(self):
        self.model.requires_grad_(False).eval()

    @classmethod
    def load(cls, name_or_path: str = DEFAULT_DINO, device: str | torch.device | None = None,
             pixel_scale: float = 1.0) -> "StructureDistance":
        """A DINO ViT by hub id (from the local cache first) or local folder."""

        def load(source: str, local_only: bool) -> ViTModel:
            return ViTModel.from_pretrained(source, add_pooling_layer=False, local_files_only=local_only)

        model = load_local_first(load, name_or_path, "DINO model", MetricLoadError, "--structure-model")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model.to(device=device, dtype=torch.float32), pixel_scale=pixel_scale, name=name_or_path)

    @classmethod
    def random(cls, seed: int = 0) -> "StructureDistance":
        """A small random-weight ViT (32x32 images, 8x8 patches): for smoke tests only."""
        config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = ViTModel(config, add_pooling_layer=False)
        return cls(model, size=32, max_size=64, name="random")

    @property
    def device(self) -> torch.device:
        return self.model.device

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> resized, ImageNet-normalised pixels."""
        pixels = resize_shorter_side(images.to(self.device, torch.float32), self.size, "bilinear", self.max_size,
                                     self.antialias)
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        return (pixels * self.pixel_scale - mean) / std

    @torch.no_grad()
    def keys(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed pixels -> (B, T, D) keys of the last layer's self-attention, heads concatenated
        (T = 1 + number of patches, the CLS token first; D = hidden size)."""
        # Non-square inputs need the position embeddings interpolated (DINO's own model does it always).
        hidden_states = self.model(pixels, output_hidden_states=True, interpolate_pos_encoding=True).hidden_states
        layernorm, key = last_layer_key(self.model)
        return key(layernorm(hidden_states[-2]))  # hidden_states: embeddings, then each layer's output

    def self_similarity(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, T, T) cosine similarities between the keys of all token pairs."""
        keys = self.keys(self.preprocess(images))  # (B, T, D)
        norms = keys.norm(dim=-1, keepdim=True)  # (B, T, 1)
        # Splice's attn_cosine_sim: the product of the norms is clamped, not each norm.
        return keys @ keys.transpose(1, 2) / (norms @ norms.transpose(1, 2)).clamp(min=1e-8)  # (B, T, T)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """(B,) distances in [0, 4], on the device of `images`."""
        if images.shape != references.shape:
            raise ValueError(f"structure distance: images {tuple(images.shape)} and references "
                             f"{tuple(references.shape)} differ in shape")
        # Two forwards, not one on both: batch position must not change a value, so that identical
        # images give exactly 0.
        difference = self.self_similarity(images) - self.self_similarity(references)  # (B, T, T)
        return difference.pow(2).flatten(1).mean(1).to(images.device)


def last_layer_key(model: ViTModel) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The last layer's pre-attention LayerNorm and key projection: transformers 5 names
    (layers[i].attention.k_proj), else 4's (encoder.layer[i].attention.attention.key)."""
    if hasattr(model, "layers"):
        layer = model.layers[-1]
        return layer.layernorm_before, layer.attention.k_proj
    layer = model.encoder.layer[-1]
    return layer.layernorm_before, layer.attention.attention.key
