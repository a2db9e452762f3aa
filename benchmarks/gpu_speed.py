"""Null-text inversion and P2P editing speed on one GPU, against a plain baseline in the same run.

Full-size SD v1 architecture with seeded random weights (real weights cannot be downloaded here;
speed does not depend on weight values). 512x512, 50 DDIM steps, guidance 7.5, and 10 inner Adam
steps at every timestep (early stop off) for every null-text row, so all rows do the same work.
Prints a table and writes $OUT/gpu_speed.json after every row (a cut-off run keeps what it had).

    python benchmarks/gpu_speed.py [--variants fp32@1,bf16+graphs+cl@1,bf16+graphs+cl@16]
    python benchmarks/gpu_speed.py --model p2p_real/assets/shapes --scenes-seed 2000 --skip-jobs   # trained weights

A variant is
DTYPE[+mixed][+lastK][+exactsum][+roundemb][+noscale][+tf32][+cudnnbench][+nosync][+compile][+graphs][+cl]@BATCH:
the UNet's dtype (fp32, bf16, fp16), TF32 tensor cores for fp32 matmuls and convolutions, CUDA-graph
replays, channels-last memory, photos per batch. +mixed runs DTYPE only where a gradient flows
(null-text's inner loop, 500 of the 650 passes) and fp32 elsewhere (the DDIM trajectory, each timestep's
conditional prediction and its advance); +lastK runs the last K timesteps (all their passes) in fp32;
+exactsum makes cuBLAS accumulate half-precision GEMMs in fp32; +roundemb rounds the text embedding to
DTYPE before the UNet, as before the text projections were kept in fp32 (p2p_real/attention.py);
+noscale backpropagates the unscaled loss (NullTextOptions.loss_scale = 1); +cudnnbench lets cuDNN time
its convolution algorithms (torch.backends.cudnn.benchmark); +nosync never reads the early-stop flags on
the host (NullTextOptions.stop_batch_early = False); +compile captures the UNet compiled by
torch.compile (with +graphs). (The +steps variant, whole Adam iterations in one graph, went with that
mechanism in issue 20: it measured no faster than per-pass graphs.)
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler

sys.path.insert(0, str(Path(__file__).parent))
from reference_null_text import reference_null_text_inversion  # noqa: E402

from p2p_real.attention import keep_text_projections_in_fp32  # noqa: E402
from p2p_real.editing.edit import edit  # noqa: E402
from p2p_real.editing.options import EditOptions  # noqa: E402
from p2p_real.inversion.ddim import ddim_invert  # noqa: E402
from p2p_real.inversion.null_text import null_text_optimize  # noqa: E402
from p2p_real.inversion.options import NullTextOptions  # noqa: E402
from p2p_real.loading import load_model
from p2p_real.models import Model  # noqa: E402
from p2p_real.pipeline import invert  # noqa: E402

STEPS, GUIDANCE = 50, 7.5
NO_EARLY_STOP = NullTextOptions(early_stop_epsilon=-1.0, early_stop_slope=0.0)
PEAK_BF16_TFLOPS = 989.0  # H100/H200 SXM dense bf16 (the datasheet's 1,979 is with sparsity)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_VARIANTS = "fp32@1,bf16@1,bf16+graphs@1,bf16+graphs+cl@1,bf16+graphs+cl@8,bf16+graphs+cl@16"
PROMPTS = ["a cat sitting on a wooden floor", "a red car parked on a street", "a bowl of fruit on a table",
           "a mountain lake at sunrise"]


def timed(function):
    """(seconds by CUDA events, peak GiB above the memory in use before, result)."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    result = function()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000, (torch.cuda.max_memory_allocated() - base) / 2**30, result


def median_timed(function, repeats: int):
    function()  # warm-up: captures, kernels, allocator
    runs = [timed(function) for _ in range(repeats)]
    return float(np.median([r[0] for r in runs])), max(r[1] for r in runs), runs[-1][2]


def flop_counts(model: Model, latents, embeddings) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.runner.forward(latents, 500, embeddings)
    forward = counter.get_total_flops()
    trainable = embeddings.detach().clone().requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        model.runner.forward(latents, 500, trainable).sum().backward()
    return {"unet_forward_gflop": forward / 1e9,
            "unet_forward_backward_to_embedding_gflop": counter.get_total_flops() / 1e9}


def with_unet(model: Model, dtype: torch.dtype, channels_last: bool = False, round_embedding: bool = False) -> Model:
    unet = copy.deepcopy(model.unet).to(dtype=dtype)
    if dtype != torch.float32 and not round_embedding:
        keep_text_projections_in_fp32(unet)  # as load_model does
    if channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    return Model(unet, model.vae, model.text, model.scheduler_config, model.name, model.fingerprint, model.upcast_vae)


class PrecisionRouter:
    """`denoise` through `fast` except for the passes routed to `exact` (fp32): with `mixed`, every
    pass that records no gradient (the DDIM trajectory, each timestep's conditional prediction and its
    advance); with `exact_timesteps`, every pass at those timesteps (the last K of sampling)."""

    def __init__(self, fast: Model, exact: Model, mixed: bool, exact_timesteps: set[int]):
        self.fast, self.exact, self.mixed, self.exact_timesteps = fast, exact, mixed, exact_timesteps

    def denoise(self, latents, timestep, embeddings):
        exact = timestep in self.exact_timesteps or (self.mixed and not torch.is_grad_enabled())
        return (self.exact if exact else self.fast).denoise(latents, timestep, embeddings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help="comma-separated DTYPE[+mixed][+lastK][+exactsum][+roundemb][+noscale][+tf32]"
                             "[+cudnnbench][+nosync][+compile][+graphs][+cl]@BATCH")
    parser.add_argument("--skip-jobs", action="store_true", help="leave out the whole-job and edit rows")
    parser.add_argument("--model", default="sd-v1-random",
                        help="built-in name or diffusers folder (default: sd-v1-random)")
    parser.add_argument("--scenes-seed", type=int, default=None,
                        help="photos: generated shape scenes of this seed with their captions (for the shapes model), "
                             "instead of random pixels")
    parser.add_argument("--compile-jobs", action="store_true", help="the whole-job, DDIM and edit rows with --compile")
    parser.add_argument("--photos", type=int, default=16,
                        help="photos drawn; the largest batch of a variant (default: 16)")
    args = parser.parse_args()
    out = Path(os.environ.get("OUT", "."))
    model = load_model(args.model, device="cuda", dtype="float32", cuda_graphs=False)
    device = torch.cuda.get_device_name()
    if args.scenes_seed is None:
        generator = torch.Generator(device="cuda").manual_seed(0)
        photos = torch.rand(args.photos, 3, model.resolution, model.resolution, generator=generator, device="cuda")
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.photos)]
    else:
        from p2p_real.images import to_tensor
        from p2p_real.shapes.scenes import scene_at

        scenes = [scene_at(args.scenes_seed, index, model.resolution) for index in range(args.photos)]
        photos = to_tensor([scene.image for scene in scenes]).cuda()
        prompts = [scene.caption for scene in scenes]
    # (N, 4, h, w), fp32 VAE
    image_latents = torch.cat([model.encode(photos[i : i + 4]) for i in range(0, args.photos, 4)])
    conditional = model.embed(prompts)
    unconditional = model.embed([""] * args.photos)
    schedule = model.schedule(STEPS)
    weights = "random (full-size SD v1 architecture)" if args.model == "sd-v1-random" else f"trained: {args.model}"
    report = {"device": device, "torch": torch.__version__, "steps": STEPS, "inner_steps": 10, "early_stop": False,
              "model": args.model, "weights": weights, "resolution": model.resolution,
              "photos": "random pixels" if args.scenes_seed is None else f"shape scenes, seed {args.scenes_seed}",
              "rows": []}
    report.update(flop_counts(model, image_latents[:1], conditional[:1]))
    nti_flop = (STEPS * 10 * report["unet_forward_backward_to_embedding_gflop"]
                + STEPS * 3 * report["unet_forward_gflop"]) * 1e9
    report["null_text_tflop_per_photo"] = nti_flop / 1e12

    def add(row: dict) -> None:
        row["fraction_of_bf16_peak"] = (row.get("flop_per_photo", 0) / row["seconds_per_photo"]
                                        / (PEAK_BF16_TFLOPS * 1e12))
        report["rows"].append(row)
        (out / "gpu_speed.json").write_text(json.dumps(report, indent=2))
        print(f"{row['what']:<48} {row['seconds_per_photo']:>8.2f} s/photo {row['peak_gib']:>7.2f} GiB "
              f"err {row.get('latent_mse', float('nan')):.5g} mean err {row.get('latent_mse_mean', float('nan')):.5g}",
              flush=True)

    # 1. The baseline: the notebook's algorithm, fp32, batch 1.
    scheduler = DDIMScheduler.from_config(model.scheduler_config)
    scheduler.set_timesteps(STEPS)
    plain_unet = lambda x, t, c: model.unet(x, t, encoder_hidden_states=c).sample  # noqa: E731
    def reference_run():
        return reference_null_text_inversion(plain_unet, scheduler, image_latents[:1], conditional[:1],
                                             unconditional[:1], GUIDANCE, 10, early_stop_epsilon=-1.0)

    seconds, peak, (reference_latents, _) = timed(reference_run)
    baseline_error = float((reference_latents - image_latents[:1]).pow(2).mean())
    add({"what": "baseline: paper's algorithm, fp32, batch 1", "seconds_per_photo": seconds, "peak_gib": peak,
         "latent_mse": baseline_error, "flop_per_photo": nti_flop, "batch": 1})

    def project_nti(variant: Model, batch: int, steps_schedule=schedule, options=NO_EARLY_STOP):
        def run():
            trajectory = ddim_invert(variant.denoise, image_latents[:batch], conditional[:batch], steps_schedule)
            return null_text_optimize(variant.denoise, trajectory, conditional[:batch], unconditional[:batch],
                                      steps_schedule, GUIDANCE, options)
        return run

    def nti_row(label: str, variant: Model, batch: int, warm: bool = False, options=NO_EARLY_STOP):
        run = project_nti(variant, batch, options=options)
        if warm:
            project_nti(variant, batch, model.schedule(2), options)()  # graph captures stay out of the timing
        seconds, peak, result = timed(run)
        errors = (result.reconstruction_latents - image_latents[:batch]).pow(2).flatten(1).mean(1)
        add({"what": label, "seconds_per_photo": seconds / batch, "seconds_total": seconds, "peak_gib": peak,
             "latent_mse": float(errors[0]), "latent_mse_mean": float(errors.mean()),
             "latent_mse_per_photo": errors.tolist(),
             "latent_mse_vs_baseline": float(errors[0]) / baseline_error - 1,
             "flop_per_photo": nti_flop, "batch": batch})

    for spec in filter(None, args.variants.split(",")):
        try:
            dtype_name, *flags, batch = spec.replace("@", "+").split("+")
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = "tf32" in flags
            torch.backends.cudnn.benchmark = "cudnnbench" in flags  # time cuDNN's convolution algorithms first
            # cuBLAS may reduce half-precision GEMMs in half precision unless told not to.
            exact_sums = "exactsum" in flags
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = not exact_sums
            torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = not exact_sums
            variant = with_unet(model, DTYPES[dtype_name], channels_last="cl" in flags,
                                round_embedding="roundemb" in flags)
            if "graphs" in flags:
                variant.use_cuda_graphs(compile="compile" in flags)  # compiled in the warm-up, outside the timing
            last = next((int(flag[4:]) for flag in flags if flag.startswith("last")), 0)
            if "mixed" in flags or last:
                exact = with_unet(model, torch.float32, channels_last="cl" in flags)
                exact = exact.use_cuda_graphs() if "graphs" in flags else exact
                variant = PrecisionRouter(variant, exact, "mixed" in flags,
                                          set(schedule.timesteps.tolist()[len(schedule.timesteps) - last:]))
            options = replace(NO_EARLY_STOP, loss_scale=1.0) if "noscale" in flags else NO_EARLY_STOP
            options = replace(options, stop_batch_early=False) if "nosync" in flags else options
            nti_row(f"project, {spec}", variant, int(batch), warm="graphs" in flags, options=options)
            del variant
        except Exception as error:  # keep the rows we have
            print(f"variant {spec} failed: {type(error).__name__}: {error}", flush=True)
            report.setdefault("errors", []).append(f"{spec}: {type(error).__name__}: {error}")
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True  # torch's defaults
            torch.backends.cudnn.benchmark = False
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = True
            torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = True
    if args.skip_jobs:
        print_table(report)
        return

    # Whole jobs through the public API (encode, invert, reconstruct, decode, metrics), batch 1, fp16.
    fast = with_unet(model, torch.float16, channels_last=True).use_cuda_graphs(compile=args.compile_jobs)
    tag = "fp16 + compile + graphs" if args.compile_jobs else "fp16 + graphs"
    image = [__import__("PIL.Image", fromlist=["Image"]).fromarray(
        (photos[0].permute(1, 2, 0) * 255).round().byte().cpu().numpy())]
    for method in ("ddim", "negative-prompt", "direct"):
        seconds, peak, [inversion] = median_timed(
            lambda method=method: invert(fast, image, [prompts[0]], method, STEPS, GUIDANCE), 3)
        add({"what": f"invert(method={method}), {tag}, whole job", "seconds_per_photo": seconds, "peak_gib": peak,
             "latent_mse": inversion.metrics["latent_mse"]})
    seconds, peak, _ = median_timed(lambda: ddim_invert(fast.denoise, image_latents[:1], conditional[:1], schedule), 5)
    add({"what": f"DDIM inversion alone (50 UNet passes), {tag}", "seconds_per_photo": seconds, "peak_gib": peak,
         "flop_per_photo": STEPS * report["unet_forward_gflop"] * 1e9})

    # One P2P edit of a stored inversion: word swap with LocalBlend, the controlled UNet run eagerly
    # and replayed from CUDA graphs (the edit's one capture included).
    [stored] = invert(fast, image, ["a cat sitting on a wooden floor"], "direct", STEPS, GUIDANCE)
    options = EditOptions(blend_words=("cat", "dog"))
    target = "a dog sitting on a wooden floor"
    eager = with_unet(model, torch.float16, channels_last=True)
    edited = {}
    for label, variant in (("eager", eager), ("graphs", fast)):
        seconds, peak, result = median_timed(lambda variant=variant: edit(variant, stored, target, options), 3)
        edited[label] = result.edited.int()
        add({"what": f"P2P edit (swap + LocalBlend), fp16, {label}", "seconds_per_photo": seconds, "peak_gib": peak,
             "flop_per_photo": STEPS * 2 * 2 * report["unet_forward_gflop"] * 1e9})
    report["edit_graphs_vs_eager_max_pixel_difference"] = int((edited["graphs"] - edited["eager"]).abs().max())
    print(f"edit, graphs against eager: largest pixel difference "
          f"{report['edit_graphs_vs_eager_max_pixel_difference']} of 255")

    print_table(report)


def print_table(report: dict) -> None:
    print(f"\ndevice: {report['device']}; torch {report['torch']}; {report['model']}, weights {report['weights']}; "
          f"{report['resolution']}px, {report['photos']}; {STEPS} steps, 10 inner steps always")
    print(f"UNet forward {report['unet_forward_gflop']:.0f} GFLOP; forward+backward to the embedding "
          f"{report['unet_forward_backward_to_embedding_gflop']:.0f} GFLOP; "
          f"null-text {report['null_text_tflop_per_photo']:.0f} TFLOP/photo")
    print(f"{'what':<52} {'s/photo':>8} {'x base':>7} {'peak GiB':>9} {'%peak':>6} {'latent err vs base':>18} "
          f"{'mean err':>10}")
    base = report["rows"][0]["seconds_per_photo"]
    for row in report["rows"]:
        vs = row.get("latent_mse_vs_baseline")
        print(f"{row['what']:<52} {row['seconds_per_photo']:>8.3f} {base / row['seconds_per_photo']:>7.1f} "
              f"{row['peak_gib']:>9.2f} {100 * row['fraction_of_bf16_peak']:>6.1f} "
              f"{'' if vs is None else f'{100 * vs:+.2f}%':>18} {row.get('latent_mse_mean', float('nan')):>10.4g}")


if __name__ == "__main__":
    main()
