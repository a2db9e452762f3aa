"""The shapes evaluation's first part: does generation follow the text? Held-out one-object captions
are sampled from seeded noise, and the colour and shape are read back from the pixels."""
from __future__ import annotations

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..images import to_uint8
from ..models import Model
from ..sampling import ddim_sample
from .check import parse_caption, read_object
from .parts import EXAMPLES, GUIDANCE, HELD_OUT_SEED, Part, figure, held_out, means


def text_following(model: Model, count: int, seed: int = HELD_OUT_SEED, steps: int = 50, guidance: float = GUIDANCE,
                   batch_size: int = 32, progress: bool = False) -> Part:
    """Sample held-out one-object captions from seeded noise and read colour and shape back."""
    captions = [scene.caption for scene in held_out(model, count, seed, max_objects=1)]
    side = model.unet.config.sample_size
    # All noise drawn at once, so a picture does not depend on the batch size.
    noise = torch.randn(count, model.unet.config.in_channels, side, side, generator=torch.Generator().manual_seed(seed))
    schedule = model.schedule(steps)
    rows, pictures = [], []
    for start in tqdm(range(0, count, batch_size), desc="text following", disable=not progress):
        batch = captions[start : start + batch_size]
        unconditional = model.embed([""] * len(batch))[None].expand(steps, -1, -1, -1)
        latents = ddim_sample(model.denoise, noise[start : start + len(batch)].to(model.device), schedule,
                              model.embed(batch), unconditional, guidance)
        for offset, image in enumerate(to_uint8(model.decode(latents))):
            words = parse_caption(batch[offset])
            reading = read_object(Image.fromarray(image.numpy()), words["background_colour"])
            row = {"index": start + offset, "caption": batch[offset], "read_colour": reading.colour,
                   "read_shape": reading.shape, "colour": reading.colour == words["colour"],
                   "shape": reading.shape == words["shape"]}
            row["both"] = row["colour"] and row["shape"]
            rows.append(row)
            if len(pictures) < 2 * EXAMPLES:
                wanted = f"{words['colour']} {words['shape']}"
                pictures.append((image, wanted if row["both"] else f"{wanted} / {reading.colour} {reading.shape}"))
    summary = {"count": count, **means(rows, ("colour", "shape", "both"))}
    rows_of_four = [pictures[index : index + 4] for index in range(0, len(pictures), 4)]
    return Part(summary, rows, {"text_following": figure(rows_of_four)})
