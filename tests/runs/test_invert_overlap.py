"""invert_photos on the CPU with the GPU's troubles made up: a batch out of memory is split (and the run
keeps the smaller size), a failed write fails its photo alone, and claiming and writing overlap the
inversion without changing a byte of what is written."""
import errno
import json
import shutil
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch

from p2p_real.runs import invert as invert_module
from p2p_real.runs import locks
from p2p_real.runs.invert import InversionSettings, invert_photos
from p2p_real.runs.photos import find_photos

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
SOURCES = ("chelsea.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg")


def photo_folder(folder: Path, count: int):
    """`count` captioned photos (copies of data/photos, cycled) in `folder`, found as the CLI finds them."""
    folder.mkdir()
    for index in range(count):
        shutil.copy(DATA / SOURCES[index % len(SOURCES)], folder / f"photo{index}.jpg")
    captions = {f"photo{index}.jpg": f"photo number {index}" for index in range(count)}
    (folder / "captions.json").write_text(json.dumps(captions))
    return find_photos([str(folder)])


def out_of_memory_above(most: int, monkeypatch) -> list[tuple[int, bool]]:
    """Make the pipeline's `invert` run out of memory for batches of more than `most` photos; the
    (size, ran) of each call, in order."""
    calls, real = [], invert_module.invert

    def invert(model, images, *args, **kwargs):
        calls.append((len(images), len(images) <= most))
        if len(images) > most:
            raise torch.OutOfMemoryError("CUDA out of memory (made up)")
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(invert_module, "invert", invert)
    return calls


def no_locks_left(output: Path) -> bool:
    return not list(output.rglob(".*.lock"))


def test_a_batch_out_of_memory_is_split_until_it_fits(tiny_model, tmp_path, monkeypatch):
    photos = photo_folder(tmp_path / "photos", 5)
    calls = out_of_memory_above(2, monkeypatch)
    report = invert_photos(tiny_model, photos, tmp_path / "out", InversionSettings("ddim", 2), batch_size=8,
                           progress=False)
    assert [photo for photo, _ in report.done] == photos and not report.failed
    assert all((tmp_path / "out" / photo.name / "inversion.json").is_file() for photo in photos)
    assert calls == [(5, False), (3, False), (2, True), (1, True), (2, True)]
    # once it failed, batches of <= 2
    assert all(ran for size, ran in calls[2:]) and all(size <= 2 for size, _ in calls[2:])
    assert no_locks_left(tmp_path / "out")


def test_later_batches_take_the_smaller_size_so_one_error_costs_one_retry(tiny_model, tmp_path, monkeypatch):
    photos = photo_folder(tmp_path / "photos", 9)
    calls = out_of_memory_above(2, monkeypatch)
    report = invert_photos(tiny_model, photos, tmp_path / "out", InversionSettings("ddim", 2), batch_size=4,
                           progress=False)
    assert len(report.done) == 9 and not report.failed
    # The second batch was claimed at 4 while the first inverted; it is inverted in halves without a retry.
    assert calls == [(4, False), (2, True), (2, True), (2, True), (2, True), (1, True)]


def test_a_photo_out_of_memory_alone_fails_after_the_graphs_are_dropped(tiny_model, tmp_path, monkeypatch):
    photos = photo_folder(tmp_path / "photos", 3)
    cleared = []

    class Graphs:  # stands in for a CudaGraphDenoiser: replays nothing, but counts clear()
        def __call__(self, latents, timestep, embeddings):
            return tiny_model.runner.forward(latents, timestep, embeddings)

        def clear(self):
            cleared.append(True)

    monkeypatch.setattr(tiny_model.runner, "graphs", Graphs())
    calls = out_of_memory_above(0, monkeypatch)
    report = invert_photos(tiny_model, photos, tmp_path / "out", InversionSettings("ddim", 2), batch_size=2,
                           progress=False)
    assert not report.done and [photo for photo, _ in report.failed] == photos
    advice = "out of GPU memory: try a smaller --batch-size, or --dtype float16 if you chose float32"
    assert all(message == f"{photo.path}: {advice}"
               for photo, message in report.failed)
    assert [size for size, _ in calls] == [2, 1, 1, 1] and len(cleared) == 4
    assert no_locks_left(tmp_path / "out")


def test_a_failed_write_fails_that_photo_alone_and_every_lock_is_released(tiny_model, tmp_path, monkeypatch):
    photos = photo_folder(tmp_path / "photos", 5)
    output, write = tmp_path / "out", invert_module.write_artifact

    def disk_full_for_photo2(inversion, folder):
        if folder.name == "photo2":
            raise OSError(errno.ENOSPC, "No space left on device")
        write(inversion, folder)

    monkeypatch.setattr(invert_module, "write_artifact", disk_full_for_photo2)
    report = invert_photos(tiny_model, photos, output, InversionSettings("ddim", 2), batch_size=2, progress=False)
    assert [photo.name for photo, _ in report.done] == ["photo0", "photo1", "photo3", "photo4"]
    [(photo, message)] = report.failed
    assert photo.name == "photo2"
    assert message.startswith(f"{output / 'photo2'}: cannot write the artifact (No space left on device)")
    assert "\n" not in message and not report.busy and not report.skipped and no_locks_left(output)
    again = invert_photos(tiny_model, photos, output, InversionSettings("ddim", 2), batch_size=2, progress=False)
    assert [photo.name for photo in again.skipped] == ["photo0", "photo1", "photo3", "photo4"]
    assert [photo.name for photo, _ in again.failed] == ["photo2"] and not again.busy and not again.done
    monkeypatch.setattr(invert_module, "write_artifact", write)
    last = invert_photos(tiny_model, photos, output, InversionSettings("ddim", 2), batch_size=2, progress=False)
    assert [photo.name for photo, _ in last.done] == ["photo2"] and len(last.skipped) == 4


def test_a_run_stopped_midway_keeps_what_it_finished_and_leaves_nothing_locked(tiny_model, tmp_path, monkeypatch):
    photos = photo_folder(tmp_path / "photos", 6)
    output, real, calls = tmp_path / "out", invert_module.invert, []

    def stopped_in_the_second_batch(model, images, *args, **kwargs):
        calls.append(len(images))
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if Ctrl-C came while the third batch was being claimed
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(invert_module, "invert", stopped_in_the_second_batch)
    with pytest.raises(KeyboardInterrupt) as stopped:
        invert_photos(tiny_model, photos, output, InversionSettings("ddim", 2), batch_size=2, progress=False)
    assert stopped.traceback and no_locks_left(output)  # released, not left for the collector of the traceback's frames
    assert [path.parent.name for path in sorted(output.glob("*/inversion.json"))] == ["photo0", "photo1"]
    monkeypatch.setattr(invert_module, "invert", real)
    again = invert_photos(tiny_model, photos, output, InversionSettings("ddim", 2), batch_size=2, progress=False)
    assert [photo.name for photo in again.skipped] == ["photo0", "photo1"] and len(again.done) == 4 and not again.busy


def wait_for(path: Path, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return path.exists()


def test_the_next_batch_is_claimed_and_the_last_written_while_one_inverts(tiny_model, tmp_path, monkeypatch):
    photos = photo_folder(tmp_path / "photos", 6)
    output, real, seen, calls = tmp_path / "out", invert_module.invert, [], []

    def invert(model, images, *args, **kwargs):
        call = len(calls)
        calls.append(len(images))
        if call < 2:  # the next batch's first photo is locked by the reader meanwhile
            seen.append(wait_for(locks.lock_path(output / f"photo{2 * call + 2}")))
        if call >= 1:  # and the last batch's record is written by the writer meanwhile
            seen.append(wait_for(output / f"photo{2 * call - 1}" / "inversion.json"))
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(invert_module, "invert", invert)
    report = invert_photos(tiny_model, photos, output, InversionSettings("ddim", 2), batch_size=2, progress=False)
    assert calls == [2, 2, 2] and seen == [True, True, True, True]
    assert len(report.done) == 6 and no_locks_left(output)


class AtOnce:
    """A ThreadPoolExecutor that runs each task as it is submitted: invert_photos one step after another."""

    def __init__(self, max_workers):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        return False

    def submit(self, function, *args):
        future = Future()
        try:
            future.set_result(function(*args))
        except Exception as error:
            future.set_exception(error)
        return future


@pytest.mark.parametrize("method", ["ddim", "null-text"])
def test_the_overlapped_run_writes_the_files_of_a_run_one_step_after_another(method, tiny_model, tmp_path, monkeypatch):
    photos = photo_folder(tmp_path / "photos", 3)
    settings = dict(settings=InversionSettings(method, 2), batch_size=2, progress=False)
    overlapped = invert_photos(tiny_model, photos, tmp_path / "overlapped", **settings)
    monkeypatch.setattr(invert_module, "ThreadPoolExecutor", AtOnce)
    in_turn = invert_photos(tiny_model, photos, tmp_path / "in_turn", **settings)
    assert len(overlapped.done) == len(in_turn.done) == 3
    files = sorted(path.relative_to(tmp_path / "in_turn") for path in (tmp_path / "in_turn").rglob("*"))
    assert files == sorted(path.relative_to(tmp_path / "overlapped") for path in (tmp_path / "overlapped").rglob("*"))
    for name in files:
        if (tmp_path / "in_turn" / name).is_file():
            assert (tmp_path / "overlapped" / name).read_bytes() == (tmp_path / "in_turn" / name).read_bytes(), name
