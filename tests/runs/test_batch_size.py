"""`--batch-size auto`: the memory model's arithmetic on made-up GPUs, the choice on the CPU, and the flag."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from p2p_real.cli import main
from p2p_real.errors import OptionError
from p2p_real.runs.batch_size import (
    GIB,
    MAX_BATCH_SIZE,
    InversionMemory,
    batch_size_for_memory,
    batch_size_option,
    choose_batch_size,
)
from p2p_real.runs.invert import InversionSettings, invert_photos
from p2p_real.runs.photos import Photo
from p2p_real.text_encoders import ClipText, SdxlText

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
PHOTO = str(DATA / "chelsea.jpg")
FAST = ["--model", "tiny-random", "--steps", "2", "--quiet"]
SD, SDXL = ClipText.photo_memory, SdxlText.photo_memory  # each family's measured row, kept by its text adapter
NULL_TEXT_SD = InversionMemory(SD, 512)


def margin(total_bytes: float, memory: InversionMemory = NULL_TEXT_SD) -> float:
    """The safety margin, and the batch's fixed memory beyond the weights."""
    return 0.10 * total_bytes + GIB + memory.fixed_bytes


def test_a_photo_costs_the_table_at_its_resolution_scaled_by_pixels_and_a_third_without_backward():
    assert NULL_TEXT_SD.photo_bytes == SD.per_photo_gib * GIB
    assert InversionMemory(SD, 768).photo_bytes == pytest.approx(SD.per_photo_gib * GIB * 2.25)
    assert InversionMemory(SDXL, 1024).photo_bytes == SDXL.per_photo_gib * GIB
    assert InversionMemory(SD, 512, needs_backward=False).photo_bytes == pytest.approx(SD.per_photo_gib * GIB / 3)
    assert InversionMemory(SD, 512, precision_bytes=4).photo_bytes == 2 * SD.per_photo_gib * GIB  # float32


def test_the_methods_table_says_which_method_runs_backward(tiny_model):
    assert InversionMemory.of(tiny_model, "null-text").needs_backward
    for method in ("ddim", "negative-prompt", "direct"):
        assert not InversionMemory.of(tiny_model, method).needs_backward
    assert InversionMemory.of(tiny_model, "ddim").precision_bytes == 4  # the tiny model runs in float32


def test_the_batch_is_what_fits_beside_the_margin_clamped_to_1_and_16_and_the_photos():
    total = 24 * GIB
    photo = NULL_TEXT_SD.photo_bytes
    for photos in (3, 4, 5):  # room for exactly 4 SD photos
        free = margin(total) + 4 * photo + 1
        assert batch_size_for_memory(free, total, NULL_TEXT_SD, 100) == 4
        assert batch_size_for_memory(free, total, NULL_TEXT_SD, photos) == min(photos, 4)
    sdxl = InversionMemory(SDXL, 1024)
    assert batch_size_for_memory(margin(total, sdxl) + 3 * sdxl.photo_bytes - 1, total, sdxl, 100) == 2
    assert batch_size_for_memory(GIB, total, NULL_TEXT_SD, 100) == 1  # less free than the margin: still 1
    assert batch_size_for_memory(140 * GIB, 141 * GIB, NULL_TEXT_SD, 100) == MAX_BATCH_SIZE
    assert batch_size_for_memory(140 * GIB, 141 * GIB, NULL_TEXT_SD, 0) == 1
    # the same memory holds at least three times the photos of a method without a backward pass
    # (its fixed part is smaller too)
    free = margin(total) + 2 * photo + 1
    assert batch_size_for_memory(free, total, NULL_TEXT_SD, 100) == 2
    assert batch_size_for_memory(free, total, InversionMemory(SD, 512, needs_backward=False), 100) >= 3 * 2


def test_auto_is_1_off_cuda_and_reads_the_free_memory_on_cuda(tiny_model, monkeypatch):
    assert choose_batch_size(tiny_model, "null-text", 10) == 1
    gpu = SimpleNamespace(device=torch.device("cuda", 0), text=ClipText, resolution=512, dtype=torch.float16)
    total = 80 * GIB
    free = margin(total) + 5 * NULL_TEXT_SD.photo_bytes + 1
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (free - GIB, total))
    # 1 GiB cached by us, unused: ours to use
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 3 * GIB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 2 * GIB)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=total))
    assert choose_batch_size(gpu, "null-text", 10) == 5
    assert choose_batch_size(gpu, "null-text", 3) == 3
    assert choose_batch_size(gpu, "null-text", 10, free_bytes=margin(total) + 2 * NULL_TEXT_SD.photo_bytes + 1) == 2


def test_the_option_takes_a_whole_number_or_auto():
    assert batch_size_option("auto") == "auto" and batch_size_option("4") == 4 and batch_size_option(3) == 3
    for bad in ("0", "-2", "2.5", "many", "", True):
        with pytest.raises(OptionError, match="^batch_size: "):
            batch_size_option(bad)


@pytest.mark.parametrize("argv, needle", [
    (["invert", PHOTO, "--prompt", "a cat", "--batch-size", "many"],
     "--batch-size: expected a whole number of photos or auto, got 'many'"),
    (["invert", PHOTO, "--prompt", "a cat", "--batch-size", "0"],
     "--batch-size: must be at least 1, got 0; pass a whole number"),
    (["edit", PHOTO, "--prompt", "a cat", "--target", "a dog", "--batch-size", "1.5"],
     "--batch-size: expected a whole number"),
])
def test_a_bad_batch_size_is_one_line_naming_the_flag_and_exit_2(argv, needle, tmp_path, capsys):
    assert main([*argv, "--output", str(tmp_path / "out"), *FAST]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"p2p-real: error: {needle}") and len(error.strip().splitlines()) == 1, error


def test_auto_is_the_default_and_inverts_one_at_a_time_on_the_cpu(tiny_model, tmp_path, capsys, monkeypatch):
    assert main(["invert", PHOTO, "--prompt", "a cat", "--method", "ddim", "--output", str(tmp_path / "a"), *FAST]) == 0
    assert main(["invert", PHOTO, "--prompt", "a cat", "--method", "ddim", "--batch-size", "auto",
                 "--output", str(tmp_path / "b"), *FAST]) == 0
    assert "inverted 1 photo(s)" in capsys.readouterr().out
    sizes = []
    monkeypatch.setattr("p2p_real.runs.invert.invert",
                        lambda model, images, *args, **kwargs: sizes.append(len(images)) or [])
    photos = [Photo(DATA / f"{name}.jpg", "a photo", name) for name in ("chelsea", "coffee", "rocket")]
    invert_photos(tiny_model, photos, tmp_path / "c", InversionSettings("ddim", 2), batch_size="auto", progress=False)
    assert sizes == [1, 1, 1]
