"""Tests for p2p_real.images: reading photos of any mode into RGB squares, and writing PNGs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, features

from p2p_real.errors import ImageError
from p2p_real.images import load_image, save_png, to_tensor, to_uint8

RED = (220, 20, 30)
GREEN = (20, 200, 40)
BLUE = (30, 40, 210)
ORIENTATION = 0x0112  # EXIF tag


def smooth_rgb(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Random but smooth RGB content (random 4x4 colours, bilinearly upsampled): survives lossy codecs."""
    coarse = Image.fromarray(rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8))
    return np.asarray(coarse.resize((width, height), Image.Resampling.BILINEAR))


def reference_square(array: np.ndarray, size: int) -> np.ndarray:
    """What load_image should give for an RGB array: its centred square, Lanczos-resized."""
    height, width = array.shape[:2]
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = Image.fromarray(array).crop((left, top, left + side, top + side))
    return np.asarray(image.resize((size, size), Image.Resampling.LANCZOS)).astype(np.int16)


def as_int(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def assert_colour(pixel, expected, tolerance=12):
    difference = np.abs(np.asarray(pixel, dtype=np.int16) - np.asarray(expected, dtype=np.int16))
    assert difference.max() <= tolerance, f"pixel {tuple(pixel)} is not close to {expected}"


# --- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix, save_kwargs, tolerance",
    [
        (".png", {}, 0.0),
        (".jpg", {"quality": 95}, 3.0),
        pytest.param(
            ".webp", {"quality": 95}, 4.0,
            marks=pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP"),
        ),
    ],
)
def test_formats_round_trip_to_rgb_square(tmp_path, suffix, save_kwargs, tolerance):
    rng = np.random.default_rng(1)
    array = smooth_rgb(rng, 96, 64)
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(array).save(path, **save_kwargs)

    image = load_image(path, 48)

    assert image.mode == "RGB"
    assert image.size == (48, 48)
    mean_error = np.abs(as_int(image) - reference_square(array, 48)).mean()
    assert mean_error <= tolerance, f"{suffix}: mean error {mean_error:.2f} against the centred square"


def test_rgba_transparency_is_composited_on_white(tmp_path):
    array = np.zeros((32, 32, 4), dtype=np.uint8)  # left half: fully transparent black
    array[:, 16:] = (*GREEN, 255)  # right half: opaque green
    path = tmp_path / "alpha.png"
    Image.fromarray(array, mode="RGBA").save(path)

    image = load_image(path, 32)

    assert image.mode == "RGB"
    pixels = np.asarray(image)
    assert_colour(pixels[16, 4], (255, 255, 255), tolerance=2)  # transparent black -> white, not black
    assert_colour(pixels[16, 28], GREEN, tolerance=2)


def test_grayscale_gives_equal_channels(tmp_path):
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, size=(24, 24), dtype=np.uint8)
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)

    pixels = np.asarray(load_image(path, 24))

    assert pixels.shape == (24, 24, 3)
    assert np.array_equal(pixels[..., 0], pixels[..., 1])
    assert np.array_equal(pixels[..., 1], pixels[..., 2])
    assert np.abs(pixels[..., 0].astype(np.int16) - gray).max() <= 1


def test_16bit_grayscale_is_scaled_by_full_range(tmp_path):
    # Neither 0 nor a single value: a min/max stretch would map 32768 -> 0 and fail here.
    values = np.full((16, 32), 32768, dtype=np.uint16)
    values[:, 16:] = 65535
    path = tmp_path / "deep.png"
    source = Image.fromarray(values)
    assert source.mode == "I;16"
    source.save(path)

    pixels = np.asarray(load_image(path, 16))  # the centred square is columns 8..23

    assert np.array_equal(pixels[..., 0], pixels[..., 2])
    assert abs(int(pixels[8, 1, 0]) - 128) <= 1  # 32768 / 65535 * 255 = 127.5
    assert int(pixels[8, 14, 0]) == 255


def test_16bit_grayscale_dark_image_is_not_stretched(tmp_path):
    values = np.full((16, 16), 4096, dtype=np.uint16)
    values[:, 8:] = 8192
    path = tmp_path / "dark16.png"
    Image.fromarray(values).save(path)

    pixels = np.asarray(load_image(path, 16))

    assert abs(int(pixels[8, 1, 0]) - 16) <= 1  # 4096 / 65535 * 255 = 15.9
    assert abs(int(pixels[8, 14, 0]) - 32) <= 1  # 8192 / 65535 * 255 = 31.9


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red
    cmyk.paste((255, 255, 0, 0), (16, 0, 32, 32))  # right half blue
    path = tmp_path / "print.jpg"
    cmyk.save(path, quality=95)
    assert Image.open(path).mode == "CMYK"

    image = load_image(path, 32)

    assert image.mode == "RGB"
    pixels = np.asarray(image)
    assert_colour(pixels[16, 4], (255, 0, 0), tolerance=20)
    assert_colour(pixels[16, 28], (0, 0, 255), tolerance=20)


def test_exif_orientation_6_is_applied(tmp_path):
    # Stored 40 wide x 20 high: left half red, right half blue. Orientation 6 means the stored
    # image must be rotated 90 degrees clockwise to display it, so it becomes 20 wide x 40 high
    # with the stored left (red) on top and the stored right (blue) at the bottom.
    stored = Image.new("RGB", (40, 20), RED)
    stored.paste(BLUE, (20, 0, 40, 20))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    path = tmp_path / "phone.jpg"
    stored.save(path, quality=95, exif=exif.tobytes())
    with Image.open(path) as check:
        assert check.getexif()[ORIENTATION] == 6

    pixels = np.asarray(load_image(path, 20))  # the centred 20x20 of the upright 20x40

    # Top half red and bottom half blue, in both the left and right columns.
    for column in (2, 17):
        assert_colour(pixels[2, column], RED, tolerance=25)
        assert_colour(pixels[17, column], BLUE, tolerance=25)


# --- centre crop -------------------------------------------------------------------------------


def striped(width: int, height: int, rng: np.random.Generator, horizontal: bool) -> np.ndarray:
    """Red at the start of the long axis, blue at the end, random content in the centred square."""
    side = min(width, height)
    array = np.zeros((height, width, 3), dtype=np.uint8)
    start = ((width if horizontal else height) - side) // 2
    if horizontal:
        array[:, :start] = RED
        array[:, start + side:] = BLUE
        array[:, start:start + side] = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
        array[:, start + side // 2] = GREEN  # the centre column
    else:
        array[:start] = RED
        array[start + side:] = BLUE
        array[start:start + side] = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
        array[start + side // 2] = GREEN  # the centre row
    return array


def test_center_crop_wide_keeps_centre_drops_edges(tmp_path):
    rng = np.random.default_rng(3)
    array = striped(90, 30, rng, horizontal=True)  # centred square is columns 30..59
    path = tmp_path / "wide.png"
    Image.fromarray(array).save(path)

    pixels = np.asarray(load_image(path, 30))  # same side: the crop itself, unscaled

    assert np.array_equal(pixels, array[:, 30:60])
    assert (pixels[:, 15] == GREEN).all()
    flat = pixels.reshape(-1, 3)
    assert not (flat == RED).all(axis=1).any() and not (flat == BLUE).all(axis=1).any()


def test_center_crop_tall_keeps_centre_drops_edges(tmp_path):
    rng = np.random.default_rng(4)
    array = striped(30, 90, rng, horizontal=False)  # centred square is rows 30..59
    path = tmp_path / "tall.png"
    Image.fromarray(array).save(path)

    pixels = np.asarray(load_image(path, 30))

    assert np.array_equal(pixels, array[30:60])
    assert (pixels[15] == GREEN).all()


def test_center_crop_with_resize_keeps_centre_colour(tmp_path):
    array = np.zeros((40, 120, 3), dtype=np.uint8)
    array[:, :40] = RED
    array[:, 40:80] = GREEN
    array[:, 80:] = BLUE
    path = tmp_path / "wide_resized.png"
    Image.fromarray(array).save(path)

    pixels = np.asarray(load_image(path, 16))

    assert np.abs(pixels.astype(np.int16) - np.array(GREEN, dtype=np.int16)).max() <= 2


# --- errors ------------------------------------------------------------------------------------


def test_text_file_named_jpg_raises_with_file_name(tmp_path):
    path = tmp_path / "not_a_photo.jpg"
    path.write_text("this is not an image\n")

    with pytest.raises(ImageError) as caught:
        load_image(path, 64)

    assert "not_a_photo.jpg" in str(caught.value)


def test_truncated_jpeg_raises(tmp_path):
    rng = np.random.default_rng(5)
    whole = tmp_path / "whole.jpg"
    Image.fromarray(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)).save(whole, quality=95)
    data = whole.read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    load_image(whole, 32)  # the complete file is fine

    with pytest.raises(ImageError) as caught:
        load_image(path, 32)

    assert "truncated.jpg" in str(caught.value)


def test_missing_file_raises(tmp_path):
    with pytest.raises(ImageError) as caught:
        load_image(tmp_path / "nowhere.png", 32)

    assert "nowhere.png" in str(caught.value)


def test_tiny_image_raises_with_its_size(tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (2, 2), RED).save(path)

    with pytest.raises(ImageError) as caught:
        load_image(path, 32)

    assert "2x2" in str(caught.value)
    assert "tiny.png" in str(caught.value)


# --- tensors and output ------------------------------------------------------------------------


def test_to_tensor_to_uint8_round_trip_is_exact():
    rng = np.random.default_rng(6)
    arrays = [rng.integers(0, 256, size=(12, 20, 3), dtype=np.uint8) for _ in range(2)]

    tensor = to_tensor([Image.fromarray(array) for array in arrays])

    assert tensor.shape == (2, 3, 12, 20)
    assert tensor.dtype == torch.float32
    assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0
    back = to_uint8(tensor)
    assert back.dtype == torch.uint8
    assert np.array_equal(back.numpy(), np.stack(arrays))


def test_save_png_writes_parameters_and_sidecar(tmp_path):
    rng = np.random.default_rng(7)
    array = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    settings = {"prompt": "a cat sitting on a wooden floor", "steps": 50, "guidance_scale": 7.5, "seed": 1234}
    path = tmp_path / "edit.png"

    save_png(Image.fromarray(array), path, settings)

    with Image.open(path) as written:
        assert written.format == "PNG"
        text = written.text["parameters"]
        assert np.array_equal(np.asarray(written.convert("RGB")), array)
    lines = text.split("\n")
    assert lines[0] == settings["prompt"]
    assert "Steps: 50" in text
    assert "Seed: 1234" in text
    assert json.loads(path.with_suffix(".json").read_text()) == settings
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edit.json", "edit.png"]  # no .partial left


@pytest.mark.parametrize("side", [32, 64, 128, 512])
def test_grid_enlarges_small_pictures_sharply_and_captions_them_whole(side):
    from picture_helpers import assert_caption_whole

    from p2p_real.images import grid

    rng = np.random.default_rng(side)
    pictures = [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(3)]
    captions = ["source", "reconstruction", "a large red circle on a plain white background, seen from above"]
    picture = grid(pictures, captions)
    scale = picture.width // (3 * side)
    assert picture.width >= 512 and picture.width == 3 * side * scale and (side < 512 or scale == 1)
    assert picture.width < 512 + 3 * side  # the smallest whole factor, not more
    for index, caption in enumerate(captions):
        assert_caption_whole(picture, 3, index, caption)
    # nearest neighbour: each source pixel is a sharp scale x scale square of its own colour
    cell = np.asarray(picture.crop((2 * side * scale, 0, 3 * side * scale, side * scale)))
    assert np.array_equal(cell, np.repeat(np.repeat(np.asarray(pictures[2]), scale, 0), scale, 1))


def test_a_word_wider_than_a_line_is_broken_and_kept_whole():
    from p2p_real.images import caption_font, wrap_caption

    font = caption_font()
    word = "pneumonoultramicroscopicsilicovolcanoconiosis"
    lines = wrap_caption(f"a {word} here", font, 60)
    assert "".join(lines).replace(" ", "") == f"a{word}here" and len(lines) > 3
    assert all(font.getlength(line) <= 60 for line in lines)
