"""Read any common photo into RGB, centre-crop and resize it; write PNGs that say what made them."""
from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import ImageError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MIN_SIDE = 8  # below this a photo carries no usable content at any model resolution
MIN_GRID_WIDTH = 512  # pixels: a row of small models' 64-pixel pictures is enlarged to be seen, not squinted at
CAPTION_FONT_SIZE = 14
CAPTION_MARGIN = 4


def load_image(path: str | os.PathLike, size: int) -> Image.Image:
    """Open a photo of any mode or bit depth as an RGB `size` x `size` image.

    EXIF orientation is applied, transparency is composited on white, 16-bit and float images are
    rescaled to 8 bits, and the largest centred square is resized with Lanczos filtering.
    """
    path = Path(path)
    image = open_image(path)
    if min(image.size) < MIN_SIDE:
        raise ImageError(f"{path}: the image is {image.width}x{image.height} pixels; "
                         f"at least {MIN_SIDE}x{MIN_SIDE} is needed")
    try:
        return center_square(to_rgb(image), size)
    except (OSError, ValueError) as error:  # e.g. LAB or other modes PIL cannot turn into RGB
        raise ImageError(f"{path}: cannot convert its {image.mode} pixels to RGB ({error}); "
                         f"save it as an RGB JPEG or PNG") from None


def open_image(path: Path) -> Image.Image:
    """The image at `path`, decoded whole and turned as its EXIF orientation says; an ImageError naming the file."""
    try:
        with Image.open(path) as opened:
            opened.load()  # decode now, so truncated files fail here and not later
            return ImageOps.exif_transpose(opened)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (expected JPEG, PNG, WebP, BMP or TIFF)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"{path}: the image could not be decoded ({error}); is the file complete?") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        if image.mode.startswith("I;16"):
            low, high = 0.0, 65535.0
        scaled = (values - low) / max(high - low, 1e-12) * 255.0
        image = Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def center_square(image: Image.Image, size: int) -> Image.Image:
    """The largest centred square, resized to size x size."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """RGB images -> (B, 3, H, W) float32 in [0, 1]."""
    arrays = np.stack([np.asarray(image, dtype=np.uint8) for image in images])  # (B, H, W, 3)
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 255.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) floats in [0, 1] -> (B, H, W, 3) uint8, on the CPU."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


def to_pil(image_hwc: torch.Tensor) -> Image.Image:
    return Image.fromarray(image_hwc.numpy())


def parameters_text(settings: dict) -> str:
    """The `parameters` text chunk that image tools read: prompt first, then `Key: value` pairs."""
    prompt = settings.get("prompt", "")
    rest = ", ".join(f"{key.replace('_', ' ').capitalize()}: {value}"
                     for key, value in settings.items() if key != "prompt")
    return f"{prompt}\n{rest}"


def save_png(image: Image.Image, path: str | os.PathLike, settings: dict) -> None:
    """Write a PNG carrying `settings` in its `parameters` chunk, then its JSON sidecar, each atomically."""
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters_text(settings))
    encoded = io.BytesIO()
    image.save(encoded, format="PNG", pnginfo=info)
    write_atomic(path, encoded.getvalue())
    write_json_atomic(path.with_suffix(".json"), settings)


def write_json_atomic(path: str | os.PathLike, data) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=False, default=str) + "\n").encode())


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then os.replace: readers
    see the old file or the new one, never a part. The temporary name is this process's own (pid and
    a random part), so that runs writing into one folder never share one. Files get the user's umask."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def grid(images: list[Image.Image], labels: list[str] | None = None,
         min_width: int = MIN_GRID_WIDTH) -> Image.Image:
    """Images side by side in one row, each optionally captioned underneath with its whole text wrapped
    to the picture's width. Small pictures are enlarged by a whole factor without smoothing (nearest
    neighbour, so pixels stay sharp squares) until the row is at least `min_width` pixels wide."""
    from PIL import ImageDraw

    width, height = images[0].size
    scale = max(1, -(-min_width // (width * len(images))))  # ceiling division
    cell_width, cell_height = width * scale, height * scale
    font = caption_font()
    lines = [wrap_caption(label, font, cell_width - 2 * CAPTION_MARGIN) for label in labels] if labels else []
    line_height = caption_line_height(font)
    caption_height = max(len(label_lines) for label_lines in lines) * line_height + 2 * CAPTION_MARGIN if lines else 0
    canvas = Image.new("RGB", (cell_width * len(images), cell_height + caption_height), "white")
    draw = ImageDraw.Draw(canvas)
    for index, image in enumerate(images):
        canvas.paste(image.resize((width, height)).resize((cell_width, cell_height), Image.Resampling.NEAREST),
                     (index * cell_width, 0))
        for number, line in enumerate(lines[index] if lines else []):
            draw.text((index * cell_width + CAPTION_MARGIN, cell_height + CAPTION_MARGIN + number * line_height),
                      line, fill="black", font=font)
    return canvas


def caption_font():
    """PIL's own font (no font file to ship or find), at a size read on any screen."""
    from PIL import ImageFont

    return ImageFont.load_default(size=CAPTION_FONT_SIZE)


def caption_line_height(font) -> int:
    top, bottom = font.getbbox("Agjy|")[1::2]
    return bottom - min(top, 0) + 3


def wrap_caption(text: str, font, width: int) -> list[str]:
    """`text` in lines no wider than `width` pixels in `font`: broken between words, and inside a word
    only where the word alone is wider than a line. Every character is kept."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= width:
            lines[-1] = candidate
            continue
        while font.getlength(word) > width and len(word) > 1:
            cut = max((end for end in range(1, len(word)) if font.getlength(word[:end]) <= width), default=1)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines
