"""CLIP score (Hessel et al. 2021), as torchmetrics and PIE-Bench compute it:
100 * max(cos(image embedding, text embedding), 0), in [0, 100]; higher means the image matches
the prompt better. PIE-Bench uses openai/clip-vit-large-patch14, on whole edited images and on
edited images times the edit mask (`metrics.masked`).

How this differs from torchmetrics.functional.multimodal.clip_score (torchmetrics 1.9):
- torchmetrics returns one number, max(mean over the batch, 0); we return max(score, 0) per image.
  PIE-Bench scores one image per call, so its numbers are the same.
- torchmetrics runs CLIPProcessor, which expects 0-255 images and divides by 255. We take [0, 1]
  floats and do the processor's steps ourselves: shorter side to the model's image size (bicubic,
  antialiased), centre crop, normalise. On float input this equals transformers 5's
  CLIPImageProcessor (do_rescale=False) exactly; older PIL-based processors round the resized
  image to 8 bits, a difference of about 1/255 per pixel.
- Prompts longer than CLIP's 77 tokens: torchmetrics cuts the token ids, which drops the end token
  that CLIP pools from; we truncate with the tokenizer, which keeps it.
- With transformers 5, get_image_features / get_text_features return an output object (the
  projected embeddings are its pooler_output), and torchmetrics 1.9's clip_score fails on it
  ("'BaseModelOutputWithPooling' object has no attribute 'norm'"). We accept both forms.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from ..clip_tokenizer import clip_tokenizer
from ..errors import MetricLoadError
from ..hub import load_local_first
from .preprocess import resize_shorter_side

DEFAULT_CLIP = "openai/clip-vit-large-patch14"  # PIE-Bench's choice
# CLIP's training statistics (openai/CLIP, clip.py `_transform`).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

@dataclass
class ClipScore:
    """`ClipScore.load()(images, prompts)` -> (B,) scores in [0, 100]; images (B, 3, H, W) in [0, 1]."""

    model: CLIPModel
    tokenizer: CLIPTokenizer
    name: str = ""

    def __post_init__(self):
        self.model.requires_grad_(False).eval()

    @classmethod
    def load(cls, name_or_path: str = DEFAULT_CLIP, device: str | torch.device | None = None) -> "ClipScore":
        """A CLIP model by hub id (from the local cache first) or local folder."""

        def load(source: str, local_only: bool) -> tuple[CLIPModel, CLIPTokenizer]:
            return (CLIPModel.from_pretrained(source, local_files_only=local_only),
                    CLIPTokenizer.from_pretrained(source, local_files_only=local_only))

        model, tokenizer = load_local_first(load, name_or_path, "CLIP model", MetricLoadError, "--clip-model")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model.to(device=device, dtype=torch.float32), tokenizer, name=name_or_path)

    @classmethod
    def random(cls, seed: int = 0) -> "ClipScore":
        """A small random-weight CLIP (32x32 images) with CLIP's real tokenizer: for smoke tests only."""
        config = CLIPConfig(
            text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=77),
            vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                               num_hidden_layers=2, num_attention_heads=4),
            projection_dim=32,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = CLIPModel(config)
        return cls(model, clip_tokenizer(), name="random")

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def image_size(self) -> int:
        return self.model.config.vision_config.image_size

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, S, S) normalised pixels, S the model's image size."""
        size = self.image_size
        pixels = resize_shorter_side(images.to(self.device, torch.float32), size, mode="bicubic")
        height, width = pixels.shape[-2:]
        top, left = (height - size) // 2, (width - size) // 2
        pixels = pixels[..., top : top + size, left : left + size]
        mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        return (pixels - mean) / std

    @torch.no_grad()
    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, D) projected image embeddings (not normalised)."""
        return projected(self.model.get_image_features(pixel_values=self.preprocess(images)))

    @torch.no_grad()
    def text_embeddings(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> (B, D) projected text embeddings (not normalised); long prompts are truncated."""
        tokens = self.tokenizer(prompts, padding=True, truncation=True, return_tensors="pt",
                                max_length=self.model.config.text_config.max_position_embeddings)
        return projected(self.model.get_text_features(input_ids=tokens.input_ids.to(self.device),
                                                      attention_mask=tokens.attention_mask.to(self.device)))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """(B,) scores 100 * max(cos, 0), on the device of `images`."""
        if isinstance(prompts, str) or len(prompts) != images.shape[0]:
            count = 1 if isinstance(prompts, str) else len(prompts)
            raise ValueError(f"CLIP score: {images.shape[0]} images but {count} prompts; "
                             f"give a list with one prompt per image")
        image = F.normalize(self.image_embeddings(images), dim=-1)  # (B, D)
        text = F.normalize(self.text_embeddings(prompts), dim=-1)  # (B, D)
        return (100 * (image * text).sum(-1)).clamp(min=0).to(images.device)


def projected(output) -> torch.Tensor:
    # transformers 4 returns the projected embeddings; 5 returns an output whose pooler_output they are.
    return output if isinstance(output, torch.Tensor) else output.pooler_output
