"""SDXL on one GPU: null-text inversion, DDIM inversion and one P2P edit at 1024x1024, against the
paper's null-text algorithm written plainly (fp32, batch 1, 50 steps, 10 inner steps, no early
stop: benchmarks/reference_null_text.py), in the same run.

Full-size SDXL base architecture with seeded random weights (`sdxl-random`: real weights cannot be
downloaded here; speed and memory do not depend on weight values). Without early stop every
null-text timestep does the same work (10 forward+backward passes, one conditional forward, one
guided step), so rows marked "x50/K" time the first K of the 50 timesteps and scale: the batch-1
row is also run in full, which checks the scaling. Prints a table; writes $OUT/sdxl_speed.json after
every row.

    python benchmarks/sdxl_speed.py [--timesteps 5] [--batches 4,8]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from diffusers import DDIMScheduler

sys.path.insert(0, str(Path(__file__).parent))
from gpu_speed import flop_counts  # noqa: E402
from reference_null_text import reference_null_text_inversion  # noqa: E402

from p2p_real.editing.edit import edit  # noqa: E402
from p2p_real.editing.options import EditOptions  # noqa: E402
from p2p_real.images import load_image, to_tensor  # noqa: E402
from p2p_real.inversion.ddim import ddim_invert  # noqa: E402
from p2p_real.inversion.null_text import null_text_optimize  # noqa: E402
from p2p_real.inversion.options import NullTextOptions  # noqa: E402
from p2p_real.loading import load_model  # noqa: E402
from p2p_real.pipeline import invert  # noqa: E402

STEPS, GUIDANCE = 50, 7.5
NO_EARLY_STOP = NullTextOptions(early_stop_epsilon=-1.0, early_stop_slope=0.0)
PEAK_BF16_TFLOPS = 989.0  # H100/H200 SXM dense bf16/fp16 (the datasheet's 1,979 is with sparsity)
PHOTO, CAPTION, TARGET = "data/photos/chelsea.jpg", "a close-up photo of a tabby cat", "a close-up photo of a tabby dog"
GIB = 2**30


def timed(function):
    """(seconds, result), after the GPU finished; on a CPU (a smoke run of the script) by the clock."""
    if not torch.cuda.is_available():
        started = time.perf_counter()
        result = function()
        return time.perf_counter() - started, result
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    result = function()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000, result


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / GIB if torch.cuda.is_available() else float("nan")


def count_flops(report: "Report", model, latents, conditional) -> None:
    """The UNet's FLOPs at batch 1 (FlopCounterMode: the same for any dtype), and null-text's per photo."""
    if "unet_forward_tflop" not in report.data:
        counts = flop_counts(model, latents, conditional)  # in GFLOP
        report.data["unet_forward_tflop"] = counts["unet_forward_gflop"] / 1e3
        report.data["unet_forward_backward_to_embedding_tflop"] = (counts["unet_forward_backward_to_embedding_gflop"]
                                                                    / 1e3)
        forward, backward = report.data["unet_forward_tflop"], report.data["unet_forward_backward_to_embedding_tflop"]
        report.data["null_text_tflop_per_photo"] = STEPS * 10 * backward + STEPS * 3 * forward  # 1 cond + 2 guided


def first_timesteps(schedule, trajectory, count: int):
    """The schedule and trajectory cut to the first `count` sampling timesteps (the noisiest)."""
    return replace(schedule, timesteps=schedule.timesteps[:count]), trajectory[-count - 1 :]


class Report:
    def __init__(self, out: Path, **facts):
        self.out, self.data = out, {**facts, "rows": []}

    def add(self, what: str, seconds_per_photo: float, **extra) -> None:
        row = {"what": what, "seconds_per_photo": seconds_per_photo, **extra}
        if "flop_per_photo" in row:
            row["fraction_of_bf16_peak"] = row["flop_per_photo"] / seconds_per_photo / (PEAK_BF16_TFLOPS * 1e12)
        self.data["rows"].append(row)
        (self.out / "sdxl_speed.json").write_text(json.dumps(self.data, indent=2))
        peak = f"{row['peak_gib']:6.2f} GiB" if "peak_gib" in row else " " * 10
        fraction = f"{100 * row['fraction_of_bf16_peak']:5.1f}% of peak" if "fraction_of_bf16_peak" in row else ""
        print(f"{what:<58} {seconds_per_photo:8.2f} s/photo {peak} {fraction}", flush=True)


def fast_rows(report: Report, args) -> dict:
    """fp16 + CUDA graphs (load_model's defaults on a GPU): the whole job, its parts, batches, an edit."""
    reset_peak()
    started = time.perf_counter()
    model = load_model(args.model, compile=args.compile, cuda_graphs=not args.eager)
    tag = "fp16 eager" if args.eager else "fp16 + compile + graphs" if args.compile else "fp16 + graphs"
    report.data["load_seconds"] = time.perf_counter() - started
    report.data["load_peak_gib"] = peak_gib()
    report.data["weights_gib"] = torch.cuda.memory_allocated() / GIB if torch.cuda.is_available() else float("nan")
    image = load_image(PHOTO, model.resolution)
    count_flops(report, model, model.encode(to_tensor([image]).to(model.device)), model.embed([CAPTION]))
    seconds, _ = timed(lambda: invert(model, [image], [CAPTION], num_steps=2, options=NO_EARLY_STOP))
    report.add(f"warm-up: invert() at 2 steps, {tag} (captures the graphs)", seconds)
    reset_peak()
    seconds, [inversion] = timed(lambda: invert(model, [image], [CAPTION], num_steps=STEPS, options=NO_EARLY_STOP))
    flop = report.data["null_text_tflop_per_photo"] * 1e12
    report.add(f"invert(): null-text, {tag}, batch 1, whole job", seconds, flop_per_photo=flop,
               peak_gib=peak_gib(),
               reserved_gib=torch.cuda.max_memory_reserved() / GIB if torch.cuda.is_available() else float("nan"),
               latent_mse=inversion.metrics["latent_mse"])
    latents = model.encode(to_tensor([image]).to(model.device).expand(max(args.batches), -1, -1, -1))
    conditional, unconditional = model.embed([CAPTION] * len(latents)), model.empty_prompt(len(latents))
    schedule = model.schedule(STEPS)
    ddim_seconds = min(timed(lambda: ddim_invert(model.denoise, latents[:1], conditional[:1], schedule))[0]
                       for _ in range(3))
    report.add(f"DDIM inversion alone (50 UNet passes), {tag}", ddim_seconds,
               flop_per_photo=STEPS * report.data["unet_forward_tflop"] * 1e12)
    for batch in args.batches:
        reset_peak()
        trajectory = ddim_invert(model.denoise, latents[:batch], conditional[:batch], schedule)
        cut, pivots = first_timesteps(schedule, trajectory, args.timesteps)
        # this batch's captures, outside the timing
        null_text_optimize(model.denoise, pivots, conditional[:batch], unconditional[:batch],
                           replace(cut, timesteps=cut.timesteps[:1]), GUIDANCE,
                           replace(NO_EARLY_STOP, num_inner_steps=1))
        seconds, _ = timed(lambda: null_text_optimize(model.denoise, pivots, conditional[:batch], unconditional[:batch],
                                                      cut, GUIDANCE, NO_EARLY_STOP))
        per_photo = (seconds * STEPS / args.timesteps + ddim_seconds * batch) / batch
        report.add(f"null-text, {tag}, batch {batch} (x50/K)", per_photo, flop_per_photo=flop,
                   peak_gib=peak_gib(), batch=batch)
    if args.skip_edit:
        return {"image": image}
    options = EditOptions(blend_words=("cat", "dog"))
    times = [timed(lambda: edit(model, inversion, TARGET, options))[0] for _ in range(3)]
    report.add(f"P2P edit (swap + LocalBlend), {tag}, first", times[0])
    report.add(f"P2P edit (swap + LocalBlend), {tag}, warm", min(times[1:]),
               flop_per_photo=STEPS * 2 * 2 * report.data["unet_forward_tflop"] * 1e12)
    return {"image": image}


def baseline_rows(report: Report, args, image) -> None:
    """The paper's algorithm written plainly: fp32 UNet called eagerly, batch 1, torch's defaults."""
    model = load_model(args.model, dtype="float32", cuda_graphs=False)
    latents = model.encode(to_tensor([image]).to(model.device))
    conditional, unconditional = model.embed([CAPTION]), model.empty_prompt(1)
    count_flops(report, model, latents, conditional)
    scheduler = DDIMScheduler.from_config(model.scheduler_config)
    scheduler.set_timesteps(STEPS)
    reset_peak()
    seconds, _ = timed(lambda: reference_null_text_inversion(model.runner.forward, scheduler, latents, conditional,
                                                             unconditional, GUIDANCE, 10, early_stop_epsilon=-1.0,
                                                             max_timesteps=args.timesteps))
    ddim = timed(lambda: ddim_invert(model.runner.forward, latents, conditional, model.schedule(STEPS)))[0]
    per_photo = ddim + (seconds - ddim) * STEPS / args.timesteps
    report.add("baseline: paper's algorithm, fp32, eager, batch 1 (x50/K)", per_photo,
               flop_per_photo=report.data["null_text_tflop_per_photo"] * 1e12, peak_gib=peak_gib())
    report.data["baseline_seconds_per_photo"] = per_photo


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timesteps", type=int, default=5, help="K: timesteps timed in the x50/K rows (default: 5)")
    parser.add_argument("--model", default="sdxl-random",
                        help="default: sdxl-random; tiny-sdxl-random smoke-tests the script on a CPU")
    parser.add_argument("--compile", action="store_true", help="the fast rows with load_model(compile=True)")
    parser.add_argument("--eager", action="store_true", help="the fast rows without CUDA graphs (--no-cuda-graphs)")
    parser.add_argument("--skip-baseline", action="store_true", help="leave out the fp32 baseline (minutes)")
    parser.add_argument("--skip-edit", action="store_true", help="leave out the edit rows")
    parser.add_argument("--batches", default="1,4,8", help="null-text batch sizes (default: 1,4,8)")
    args = parser.parse_args()
    args.batches = [int(batch) for batch in args.batches.split(",")]
    report = Report(Path(os.environ.get("OUT", ".")),
                    device=torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                    torch=torch.__version__, model=args.model, weights="random (full-size SDXL base architecture)",
                    resolution=1024, steps=STEPS, inner_steps=10, early_stop=False, timesteps_timed=args.timesteps)
    image = load_image(PHOTO, 1024 if args.model == "sdxl-random" else 128)
    if not args.skip_baseline:
        baseline_rows(report, args, image)  # its float32 model is freed on return
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    fast_rows(report, args)
    if torch.cuda.is_available():
        report.data["peak_of_the_whole_run_gib"] = torch.cuda.max_memory_allocated() / GIB
    rows = report.data["rows"]
    baseline = report.data.get("baseline_seconds_per_photo", 234.7)  # run 1 of docs/BENCHMARKS.md's SDXL section
    print("\nspeed-up over the baseline:")
    for row in rows:
        if row["what"].startswith(("invert()", "null-text")):
            print(f"  {row['what']:<58} {baseline / row['seconds_per_photo']:6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
