"""Folder runs across processes through a real launcher (torchrun, gloo on the CPU, 2 processes,
tiny-random): disjoint shares, one summary from rank 0, a bad photo on one rank, resuming after a kill."""
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from p2p_real.artifacts import load_inversion, read_record
from p2p_real.runs.ranks import Ranks

DATA = Path(__file__).parent.parent.parent / "data" / "photos"
PHOTOS = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg")


def test_shares_are_disjoint_complete_and_independent_of_order():
    items = [f"photo{index:02d}" for index in range(11)] + ["photo03"]  # a repeated key stays on one rank
    for world_size in (1, 2, 3, 4, 16):
        shares = [Ranks(rank, world_size).share(items, key=str) for rank in range(world_size)]
        assert sorted(item for share in shares for item in share) == sorted(items)
        assert all(not set(a) & set(b) for i, a in enumerate(shares) for b in shares[i + 1 :])
        assert max(map(len, shares)) - min(map(len, shares)) <= 2  # 11 keys, one key twice
        shuffled = random.Random(world_size).sample(items, len(items))
        reshared = [sorted(Ranks(rank, world_size).share(shuffled, key=str)) for rank in range(world_size)]
        assert reshared == [sorted(s) for s in shares]


def test_the_launchers_environment_names_the_rank():
    assert Ranks.from_environment({}) == Ranks(0, 1, 0)
    assert Ranks.from_environment({"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == Ranks(5, 8, 1)
    assert Ranks(1, 2).device("cpu") == "cpu" and Ranks().device(None) is None


def launch(arguments: list[str], processes: int = 2, **options) -> subprocess.Popen:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "p2p_real", *arguments]
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **options)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


def test_two_processes_share_a_folder_and_rank_zero_reports_once(tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(DATA, photos)
    (photos / "rocket.jpg").write_bytes(b"not a jpeg")  # a bad photo on one rank fails alone
    code, out, err = finish(launch(["invert", str(photos), "--output", str(tmp_path / "out"), "--model", "tiny-random",
                                    "--steps", "2", "--inner-steps", "1", "--quiet"]))
    assert code != 0  # the rank with the bad photo exits 1, and the launcher says so
    assert out.count("inverted") == 1  # one summary, from rank 0
    assert "inverted 3 photo(s)" in out and "on 2 processes" in out and "1 failed" in out
    assert "rocket.jpg" in err
    for name in ("astronaut", "chelsea", "coffee"):
        load_inversion(tmp_path / "out" / name)  # every other rank's artifact is there and whole
    # Shares are by sorted path, every second: astronaut + coffee on rank 0, chelsea + rocket on rank 1.
    assert "(2 + 1 done)" in out


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and its descendants (torchrun starts each rank in a session of its own)."""
    children = {}
    for entry in (path for path in Path("/proc").iterdir() if path.name.isdigit()):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    stack = [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        try:
            os.kill(current, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_killed_run_resumes_with_only_the_rest(tmp_path):
    output = tmp_path / "out"
    arguments = ["invert", str(DATA), "--output", str(output), "--model", "tiny-random", "--steps", "10",
                 "--inner-steps", "3", "--quiet"]
    process = launch(arguments)
    deadline = time.monotonic() + 300
    while not list(output.glob("*/inversion.json")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    kill_tree(process.pid)  # the launcher and both ranks, mid-run, as a cluster's scheduler does
    process.communicate()
    finished = [folder.name for folder in output.iterdir() if folder.is_dir() and read_record(folder) is not None]
    assert finished, "no artifact was written before the kill"
    for name in finished:
        load_inversion(output / name)  # complete: records are written last
    code, out, err = finish(launch(arguments))
    assert code == 0, err
    assert f"inverted {len(PHOTOS) - len(finished)} photo(s)" in out and f"{len(finished)} already done" in out
    assert sorted(folder.name for folder in output.iterdir() if folder.is_dir()) == sorted(Path(p).stem for p in PHOTOS)


def test_the_gpus_flag_runs_the_same_command_under_torchrun(tmp_path, capfd, monkeypatch):
    from p2p_real.cli import main
    from p2p_real.runs import launch
    from p2p_real.runs.launch import without_gpus

    assert without_gpus(["invert", "x", "--gpus", "2", "--quiet", "--gpus=3"]) == ["invert", "x", "--quiet"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(launch, "cuda_gpus", lambda: 2)  # two CPU processes stand in for two GPUs
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in PHOTOS[:2]:
        shutil.copy(DATA / name, photos)
    argv = ["invert", str(photos), "--prompt", "a photo", "--output", str(tmp_path / "out"), "--model", "tiny-random",
            "--steps", "2", "--inner-steps", "1", "--quiet", "--gpus", "2"]
    assert main(argv) == 0
    out = capfd.readouterr().out
    assert "inverted 2 photo(s)" in out and "on 2 processes (1 + 1 done)" in out
    assert main([*argv[:-2], "--gpus", "2", "--device", "cpu"]) == 2
    monkeypatch.setenv("RANK", "0")
    assert main(argv) == 2
    assert "already runs under a launcher" in capfd.readouterr().err
