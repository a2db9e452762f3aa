"""Runs sharing one output folder: never a crash nor a corrupt file, each item done once (runs/locks.py)."""
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from p2p_real.artifacts import load_inversion
from p2p_real.editing.options import EditOptions
from p2p_real.runs import edits as edits_module
from p2p_real.runs import locks
from p2p_real.runs.edits import run_edits
from p2p_real.runs.edits_file import EditJob
from p2p_real.runs.invert import InversionSettings, invert_photos, invert_waiting
from p2p_real.runs.photos import Photo

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
CAPTIONS = {"chelsea": "a close-up photo of a tabby cat", "coffee": "a cup of coffee"}


def photos() -> list[Photo]:
    return [Photo(DATA / f"{name}.jpg", caption, name) for name, caption in CAPTIONS.items()]


def test_a_lock_has_one_holder_and_is_free_again_once_released(tmp_path):
    folder = tmp_path / "chelsea"
    first = locks.acquire(folder)
    assert first is not None and locks.acquire(folder) is None  # another open file of this process is another holder
    assert f"pid {os.getpid()}" in locks.owner(folder)
    locks.release(folder, first)
    assert not locks.lock_path(folder).exists()
    with locks.claimed(folder) as mine:
        assert mine
    assert not locks.lock_path(folder).exists()


def hold_and_count(folder: Path, log: Path, rounds: int) -> None:
    for _ in range(rounds):
        descriptor = locks.acquire(folder)
        if descriptor is not None:
            with open(log, "a") as file:
                file.write(f"in {os.getpid()}\n")
                file.flush()
                time.sleep(0.002)
                file.write(f"out {os.getpid()}\n")
            locks.release(folder, descriptor)


def test_processes_racing_for_one_lock_never_hold_it_together(tmp_path):
    log = tmp_path / "log"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=hold_and_count, args=(tmp_path / "item", log, 100)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    lines = log.read_text().splitlines()
    assert lines and all(a.split()[0] == "in" and b == f"out {a.split()[1]}" for a, b in zip(lines[0::2], lines[1::2]))


def test_a_photo_another_run_holds_is_left_to_it(tiny_model, tmp_path):
    chelsea, coffee = photos()
    held = locks.acquire(tmp_path / "chelsea")
    report = invert_photos(tiny_model, [chelsea, coffee], tmp_path, InversionSettings("ddim", 2), progress=False)
    assert report.busy == [chelsea] and [photo for photo, _ in report.done] == [coffee] and not report.failed
    assert not (tmp_path / "chelsea" / "inversion.json").exists()
    locks.release(tmp_path / "chelsea", held)
    report = invert_photos(tiny_model, [chelsea, coffee], tmp_path, InversionSettings("ddim", 2), progress=False)
    assert [photo for photo, _ in report.done] == [chelsea] and report.skipped == [coffee]


def test_a_stale_lock_of_a_dead_run_is_taken_over(tiny_model, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = locks.lock_path(tmp_path / "chelsea")
    owner = {"pid": int(dead.stdout), "host": os.uname().nodename, "started": "2020-01-01T00:00:00"}
    lock.write_text(json.dumps(owner))
    report = invert_photos(tiny_model, photos()[:1], tmp_path, InversionSettings("ddim", 2), progress=False)
    assert len(report.done) == 1 and not report.busy and not lock.exists()


def test_an_edit_waits_for_its_photo_and_leaves_an_edit_another_run_holds(tiny_model, tmp_path, monkeypatch):
    def ddim_waiting(model, photos, output, settings, *args, **keywords):  # fast
        return invert_waiting(model, photos, output, replace(settings, method="ddim"), *args, **keywords)

    monkeypatch.setattr(edits_module, "invert_waiting", ddim_waiting)
    chelsea = photos()[0]
    held = locks.acquire(tmp_path / "chelsea")
    threading.Timer(1.0, locks.release, (tmp_path / "chelsea", held)).start()  # the other run finishes
    jobs = [EditJob(chelsea.path, target, EditOptions(), chelsea.caption)
            for target in ("a close-up photo of a tabby dog", "a close-up photo of a fluffy tabby cat")]
    started = time.perf_counter()
    report = run_edits(tiny_model, jobs, tmp_path, num_steps=2, progress=False)
    assert time.perf_counter() - started > 1.0 and len(report.done) == 2  # waited, then inverted it here
    [dog_folder] = (tmp_path / "chelsea").glob("a-close-up-photo-of-a-tabby-dog-*")
    (dog_folder / "edited.json").unlink()
    held = locks.acquire(dog_folder)
    report = run_edits(tiny_model, jobs, tmp_path, num_steps=2, progress=False)
    assert report.busy == jobs[:1] and report.skipped == jobs[1:] and not report.done
    locks.release(dog_folder, held)


def test_two_command_line_runs_on_one_output_do_each_photo_once(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg"):
        shutil.copy(DATA / name, folder)
    argv = [sys.executable, "-m", "p2p_real.cli", "invert", str(folder), "--prompt", "a photo", "--output",
            str(tmp_path / "out"), "--model", "tiny-random", "--method", "ddim", "--steps", "3", "--quiet"]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    inverted = [int(re.search(r"inverted (\d+) photo\(s\)", out).group(1)) for out, _ in outputs]
    assert sum(inverted) == 4, outputs
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        assert load_inversion(tmp_path / "out" / name).num_steps == 3
    assert not list((tmp_path / "out").rglob("*.partial")) and not list((tmp_path / "out").rglob(".*.lock"))
