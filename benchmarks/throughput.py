"""Photos per minute as a user gets them: the real CLI (`python -m p2p_real invert`) on N generated
photos, on 1, 2, ... processes (torchrun, one GPU each), in one run.

For each process count it reports the whole job (wall clock, start-up included), the steady state
(from the artifacts' records: photos after each process's first batch, over the time they took),
the seconds until the first artifact (start-up plus one batch), peak GPU memory per card (sampled
with nvidia-smi), and with --tflop-per-photo the fraction of the FLOP floor. Writes
$OUT/throughput.json after each row.

    python benchmarks/throughput.py --model sd-v1-random --photos 64 --batch-size 8 --gpus 1,2
    python benchmarks/throughput.py --model tiny-random --photos 6 --steps 2 --gpus 1,2   # CPU smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

PEAK_TFLOPS = 989.0  # H100/H200 dense fp16/bf16
CAPTIONS = ["a cat sitting on a wooden floor", "a red car parked on a street", "a bowl of fruit on a table",
            "a mountain lake at sunrise"]


def make_photos(folder: Path, count: int, size: int = 512) -> None:
    """Random-pixel photos with captions (speed does not depend on what the photos show)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    captions = {}
    for index in range(count):
        name = f"photo{index:04d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / name)
        captions[name] = CAPTIONS[index % len(CAPTIONS)]
    (folder / "captions.json").write_text(json.dumps(captions))


class GpuMemorySampler:
    """Peak memory used per GPU while the job runs, from nvidia-smi every half second (none on a CPU)."""

    def __init__(self):
        self.peaks: list[float] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        while not self.stopped.wait(0.5):
            try:
                text = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                      capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.TimeoutExpired):
                return
            used = [float(line) / 1024 for line in text.split()]
            self.peaks = [max(pair) for pair in zip(self.peaks, used)] if self.peaks else used

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()


def run_job(photos: Path, output: Path, processes: int, args) -> dict:
    cli = ["-m", "p2p_real", "invert", str(photos), "--output", str(output), "--model", args.model,
           "--batch-size", str(args.batch_size), "--quiet", *args.extra.split()]
    if args.steps:
        cli += ["--steps", str(args.steps)]
    command = [sys.executable, *(["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
                                 if processes > 1 else []), *cli]
    started = time.time()
    with GpuMemorySampler() as sampler:
        finished = subprocess.run(command, capture_output=True, text=True)
    wall = time.time() - started
    if finished.returncode != 0:
        raise RuntimeError(f"{processes} process(es): exit {finished.returncode}: {finished.stderr[-2000:]}")
    records = sorted((path / "inversion.json").stat().st_mtime for path in output.iterdir()
                     if (path / "inversion.json").exists())
    # The first batch of each process holds the start-up. With --batch-size auto, read its size off the
    # records: a batch's records are written within seconds, batches a minute apart, so the first batch
    # ends at the longest pause in the first half of the run.
    gaps = [later - earlier for earlier, later in zip(records, records[1:len(records) // 2 + 1])]
    batch = (int(args.batch_size) if args.batch_size.isdigit()
             else max(1, (gaps.index(max(gaps)) + 1 if gaps else 1) // processes))
    first_batches = min(processes * batch, len(records) - 1)
    steady = ((len(records) - first_batches) / (records[-1] - records[first_batches - 1]) * 60 if first_batches >= 1
              else float("nan"))
    row = {"processes": processes, "photos": len(records), "wall_seconds": wall,
           "photos_per_minute_whole_job": len(records) / wall * 60, "photos_per_minute_steady": steady,
           "seconds_to_first_artifact": records[0] - started, "peak_gpu_memory_gib": sampler.peaks,
           "first_batch": batch,
           # what precedes the first batch's work: imports, model, compilation (at the steady pace)
           "startup_seconds": records[0] - started - batch / steady * 60 * processes,
           "summary": finished.stdout.strip().splitlines()[:1]}
    if args.tflop_per_photo:
        row["fraction_of_flop_floor"] = steady / 60 * args.tflop_per_photo / (PEAK_TFLOPS * processes)
    return row


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sd-v1-random")
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--batch-size", default="8", help="a number, or auto")
    parser.add_argument("--steps", type=int, default=None, help="default: the CLI's for the model")
    parser.add_argument("--gpus", default="1", help="process counts, one GPU each, e.g. 1,2,4")
    parser.add_argument("--size", type=int, default=512, help="photo side in pixels (resized to the model's anyway)")
    parser.add_argument("--extra", default="", help="more flags for `p2p-real invert`, e.g. '--compile'")
    parser.add_argument("--json", default="throughput.json", help="file name under $OUT")
    parser.add_argument("--tflop-per-photo", type=float, default=None, help="for the fraction of the FLOP floor "
                        "(null-text per docs/BENCHMARKS.md: SD v1 981, SDXL 8348)")
    args = parser.parse_args()
    out = Path(os.environ.get("OUT", "."))
    report = {"model": args.model, "photos": args.photos, "batch_size": args.batch_size, "extra": args.extra,
              "rows": []}
    with tempfile.TemporaryDirectory() as scratch:
        photos = Path(scratch) / "photos"
        make_photos(photos, args.photos, args.size)
        for processes in [int(count) for count in args.gpus.split(",")]:
            output = Path(scratch) / f"out-{processes}"
            row = run_job(photos, output, processes, args)
            shutil.rmtree(output)
            report["rows"].append(row)
            (out / args.json).write_text(json.dumps(report, indent=2))
            print(f"{processes} process(es): {row['photos_per_minute_whole_job']:6.1f} photos/min whole job, "
                  f"{row['photos_per_minute_steady']:6.1f} steady, "
                  f"first artifact after {row['seconds_to_first_artifact']:.1f} s "
                  f"(start-up {row['startup_seconds']:.1f} s), "
                  f"peak GPU memory {', '.join(f'{peak:.1f}' for peak in row['peak_gpu_memory_gib']) or '-'} GiB",
                  flush=True)
    base = report["rows"][0]["photos_per_minute_steady"]
    for row in report["rows"][1:]:
        print(f"scaling, {row['processes']} processes: {row['photos_per_minute_steady'] / base:.2f}x steady "
              f"({row['photos_per_minute_steady'] / base / row['processes'] * 100:.0f}% of linear)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
