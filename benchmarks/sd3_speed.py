"""SD3.5-medium on one GPU at 1024x1024: null-text inversion (28 steps, 10 inner steps, no early
stop), peak memory at batch 1 and one P2P edit, against the paper's algorithm written plainly for this
model (diffusers' transformer and FlowMatchEulerDiscreteScheduler called directly, batch 1, eager,
fp32 and fp16), with the FLOP floor counted by torch.utils.flop_counter.

Full-size `sd3-random` (SD3.5-medium's architecture, seeded random weights: speed and memory do not
depend on weight values). Without early stop every null-text timestep does the same work, so rows
marked "x28/K" time the first K timesteps and scale (the fast whole-job row checks the scaling).
Prints a table; writes JSON to --out (default $OUT/sd3_speed.json) after every row; a row that fails
is recorded with its error and the run goes on.

    python benchmarks/sd3_speed.py --out $OUT/sd3_speed.json            # GPU, about 5-8 minutes
    python benchmarks/sd3_speed.py --model tiny-sd3-random --out /tmp/s.json   # CPU smoke run
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
import torch.nn.functional as F
from diffusers import FlowMatchEulerDiscreteScheduler

sys.path.insert(0, str(Path(__file__).parent))
from gpu_speed import flop_counts  # noqa: E402

from p2p_real.editing.edit import edit  # noqa: E402
from p2p_real.editing.options import EditOptions  # noqa: E402
from p2p_real.images import load_image, to_tensor  # noqa: E402
from p2p_real.inversion.ddim import ddim_invert  # noqa: E402
from p2p_real.inversion.null_text import null_text_optimize  # noqa: E402
from p2p_real.inversion.options import NullTextOptions  # noqa: E402
from p2p_real.loading import load_model  # noqa: E402
from p2p_real.pipeline import invert  # noqa: E402

STEPS, GUIDANCE, INNER = 28, 7.0, 10  # StableDiffusion3Pipeline's steps and guidance; the paper's inner loop
NO_EARLY_STOP = NullTextOptions(early_stop_epsilon=-1.0, early_stop_slope=0.0)
PEAK_BF16_TFLOPS = 989.0  # H100/H200 SXM dense bf16/fp16
PHOTO, CAPTION, TARGET = "data/photos/chelsea.jpg", "a close-up photo of a tabby cat", "a close-up photo of a tabby dog"
GIB = 2**30


def timed(function):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started, result


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / GIB if torch.cuda.is_available() else float("nan")


def plain_null_text(transformer, scheduler, latents, text, negative, guidance, inner, max_timesteps):
    """The paper's Algorithm 1 for SD3, written plainly: Euler inversion with the caption, then per
    timestep Adam on the negative (tokens, pooled) so that the guided Euler step lands on the pivot;
    `text`, `negative`: (tokens (1, 333, 4096), pooled (1, 2048)) as the pipeline's encode_prompt."""
    timesteps, sigmas = scheduler.timesteps.tolist(), scheduler.sigmas.tolist()

    def velocity(x, t, embeds):
        timestep = torch.full((x.shape[0],), t, device=x.device)
        return transformer(hidden_states=x, timestep=timestep, encoder_hidden_states=embeds[0],
                           pooled_projections=embeds[1]).sample

    pivots = [latents]
    with torch.no_grad():
        for index in reversed(range(len(timesteps))):
            pivots.append(pivots[-1] + (sigmas[index] - sigmas[index + 1]) * velocity(pivots[-1], timesteps[index],
                                                                                        text))
    current = pivots[-1]
    for index, t in enumerate(timesteps[:max_timesteps]):
        tokens, pooled = (part.clone().detach().requires_grad_(True) for part in negative)
        optimizer = torch.optim.Adam([tokens, pooled], lr=1e-2 * (1 - index / 100))
        with torch.no_grad():
            conditional = velocity(current, t, text)
        step = sigmas[index + 1] - sigmas[index]
        for _ in range(inner):
            unconditional = velocity(current, t, (tokens, pooled))
            guided = unconditional + guidance * (conditional - unconditional)
            loss = F.mse_loss(current + step * guided, pivots[-index - 2])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        negative = (tokens.detach(), pooled.detach())
        with torch.no_grad():
            both = velocity(torch.cat([current] * 2), t, tuple(torch.cat(pair) for pair in zip(negative, text)))
            unconditional, conditional = both.chunk(2)
            current = current + step * (unconditional + guidance * (conditional - unconditional))
    return current


class Report:
    def __init__(self, out: Path, **facts):
        self.out, self.data = out, {**facts, "rows": []}

    def add(self, what: str, seconds: float | None, **extra) -> None:
        row = {"what": what, "seconds_per_photo": seconds, **extra}
        if seconds and "flop_per_photo" in row:
            row["fraction_of_bf16_peak"] = row["flop_per_photo"] / seconds / (PEAK_BF16_TFLOPS * 1e12)
        self.data["rows"].append(row)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.data, indent=2))
        shown = f"{seconds:8.2f} s/photo" if seconds is not None else f"FAILED: {extra.get('error', '')[:150]}"
        peak = f" {row['peak_gib']:6.2f} GiB peak" if "peak_gib" in row else ""
        print(f"{what:<60} {shown}{peak}", flush=True)

    def attempt(self, what: str, run) -> None:
        """run() -> (seconds, extra); a failure is recorded, not fatal."""
        try:
            seconds, extra = run()
            self.add(what, seconds, **extra)
        except Exception as error:  # noqa: BLE001 - a benchmark row reports any failure and the run goes on
            self.add(what, None, error=f"{type(error).__name__}: {error}")


def baseline_rows(report: Report, args, image, dtype: torch.dtype) -> None:
    """The plain algorithm in `dtype` (the whole model cast, no CUDA graphs, batch 1)."""
    name = str(dtype).replace("torch.", "")
    model = load_model(args.model, dtype=name, cuda_graphs=False)
    text = model.text
    latents = model.encode(to_tensor([image]).to(model.device)).to(dtype)
    encoded = [model.embed([CAPTION]).to(dtype), model.empty_prompt(1).to(dtype)]
    text_pair, negative_pair = ((embeds[:, :-1], embeds[:, -1, : text.pooled_width]) for embeds in encoded)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(model.scheduler_config)
    scheduler.set_timesteps(STEPS)
    count = args.timesteps

    def run():
        reset_peak()
        seconds, _ = timed(lambda: plain_null_text(model.denoiser, scheduler, latents, text_pair, negative_pair,
                                                   GUIDANCE, INNER, count))
        inversion_seconds, _ = timed(lambda: plain_null_text(model.denoiser, scheduler, latents, text_pair,
                                                             negative_pair, GUIDANCE, INNER, 0))
        per_photo = inversion_seconds + (seconds - inversion_seconds) * STEPS / count
        return per_photo, {"peak_gib": peak_gib(), "flop_per_photo": report.data.get("null_text_tflop_per_photo",
                                                                                      0) * 1e12}

    report.attempt(f"baseline: paper's algorithm, {name}, eager, batch 1 (x{STEPS}/K)", run)
    if name == "float32":
        report.data.setdefault("baseline_seconds_per_photo", report.data["rows"][-1]["seconds_per_photo"])


def count_flops(report: Report, model, image) -> None:
    latents = model.encode(to_tensor([image]).to(model.device))
    counts = flop_counts(model, latents, model.embed([CAPTION]))  # GFLOP, batch 1 (the same in any dtype)
    forward, backward = counts["unet_forward_gflop"] / 1e3, counts["unet_forward_backward_to_embedding_gflop"] / 1e3
    report.data.update(transformer_forward_tflop=forward, transformer_forward_backward_to_embedding_tflop=backward,
                       # 10 inner forward+backward passes, one conditional pass, one guided (batch 2) step per
                       # timestep, plus the Euler inversion's pass
                       null_text_tflop_per_photo=STEPS * (INNER * backward + 4 * forward))
    report.data["null_text_floor_seconds_at_bf16_peak"] = report.data["null_text_tflop_per_photo"] / PEAK_BF16_TFLOPS
    report.data["edit_tflop"] = STEPS * 4 * forward  # [uncond, cond] x [source, target]
    print(f"FLOPs: forward {forward:.2f} TFLOP, forward+backward {backward:.2f}; null-text "
          f"{report.data['null_text_tflop_per_photo'] / 1e3:.2f} PFLOP per photo, floor "
          f"{report.data['null_text_floor_seconds_at_bf16_peak']:.1f} s at {PEAK_BF16_TFLOPS:g} TFLOP/s", flush=True)


def fast_rows(report: Report, args, image) -> None:
    """load_model's defaults (float16 + CUDA graphs on a GPU): the whole job, K timesteps, an edit."""
    reset_peak()
    started = time.perf_counter()
    model = load_model(args.model, cuda_graphs=not args.eager)
    report.data["load_seconds"] = time.perf_counter() - started
    report.data["weights_gib"] = torch.cuda.memory_allocated() / GIB if torch.cuda.is_available() else None
    tag = "fp16 eager" if args.eager else "fp16 + graphs" if torch.cuda.is_available() else "cpu float32"
    if "transformer_forward_tflop" not in report.data:
        count_flops(report, model, image)
    flop = report.data["null_text_tflop_per_photo"] * 1e12
    report.attempt(f"warm-up: invert() at 2 steps, {tag}",
                   lambda: (timed(lambda: invert(model, [image], [CAPTION], num_steps=2, options=NO_EARLY_STOP))[0],
                            {}))
    latents = model.encode(to_tensor([image]).to(model.device))
    conditional, unconditional = model.embed([CAPTION]), model.empty_prompt(1)
    schedule = model.schedule(STEPS)

    def k_timesteps():
        reset_peak()
        trajectory_seconds, trajectory = timed(lambda: ddim_invert(model.denoise, latents, conditional, schedule))
        cut = replace(schedule, timesteps=schedule.timesteps[: args.timesteps])
        seconds, _ = timed(lambda: null_text_optimize(model.denoise, trajectory, conditional, unconditional, cut,
                                                      GUIDANCE, NO_EARLY_STOP))
        return trajectory_seconds + seconds * STEPS / args.timesteps, {"peak_gib": peak_gib(), "flop_per_photo": flop}

    report.attempt(f"null-text, {tag}, batch 1 (x{STEPS}/K)", k_timesteps)
    inversions = []

    def whole_job():
        reset_peak()
        seconds, result = timed(lambda: invert(model, [image], [CAPTION], options=NO_EARLY_STOP))
        inversions.extend(result)
        return seconds, {"peak_gib": peak_gib(), "flop_per_photo": flop, "latent_mse": result[0].metrics["latent_mse"]}

    if not args.skip_whole:
        report.attempt(f"invert(): null-text, {tag}, batch 1, whole job (28 steps)", whole_job)
    if not inversions:
        [inversion] = invert(model, [image], [CAPTION], method="ddim")
        inversions.append(inversion)
    options = EditOptions(blend_words=("cat", "dog"))
    for label in ("first", "warm"):
        report.attempt(f"P2P edit (swap + LocalBlend), {tag}, {label}", lambda: (
            timed(lambda: edit(model, inversions[0], TARGET, options))[0],
            {"flop_per_photo": report.data["edit_tflop"] * 1e12, "peak_gib": peak_gib()}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sd3-random", help="default: sd3-random; tiny-sd3-random: a CPU smoke run")
    parser.add_argument("--timesteps", type=int, default=3, help="K: timesteps timed in the x28/K rows (default 3)")
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "sd3_speed.json"))
    parser.add_argument("--eager", action="store_true", help="the fast rows without CUDA graphs")
    parser.add_argument("--skip-baseline", action="store_true", help="leave out the fp32 and fp16 baselines")
    parser.add_argument("--skip-whole", action="store_true", help="leave out the 28-step whole-job row")
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    report = Report(Path(args.out), device=torch.cuda.get_device_name() if gpu else "cpu", torch=torch.__version__,
                    model=args.model, steps=STEPS, guidance=GUIDANCE, inner_steps=INNER, early_stop=False,
                    timesteps_timed=args.timesteps)
    probe = load_model(args.model, device="cpu") if not gpu else None  # the resolution, without a GPU copy
    resolution = probe.resolution if probe is not None else 1024
    image = load_image(PHOTO, resolution)
    report.data["resolution"] = resolution
    fast_rows(report, args, image)
    reset_peak()
    if not args.skip_baseline:
        for dtype in (torch.float32, torch.float16) if gpu else (torch.float32,):
            baseline_rows(report, args, image, dtype)
    baseline = report.data.get("baseline_seconds_per_photo")
    if baseline:
        print("\nspeed-up over the fp32 baseline:")
        for row in report.data["rows"]:
            if row["seconds_per_photo"] and row["what"].startswith(("invert()", "null-text", "baseline")):
                print(f"  {row['what']:<60} {baseline / row['seconds_per_photo']:6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
