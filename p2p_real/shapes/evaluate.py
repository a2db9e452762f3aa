"""Issue 6's measurements of a shapes model, on held-out scenes, from the command line: does
generation follow the text (`text_following.py`), how closely do DDIM and null-text inversion
reconstruct (`reconstruction.py`), and do Prompt-to-Prompt edits do what their words say: colour swap,
shape swap, re-weighting, LocalBlend (`p2p_checks.py`)?

Scenes come from seed 1000 (training draws seed 0), so the model has seen none of them. Every score is
read from pixels, by `check.py` or with `eval.metrics`' PSNR and SSIM, so the evaluation needs no
learned metric (LPIPS, CLIP) and runs offline.

    python -m p2p_real.shapes.evaluate --model p2p_real/assets/shapes --output docs/results/shapes

writes OUTPUT/shapes_eval.json (settings, device, seconds per part, means and one row per scene) and
PNG figures of a few examples, and prints a short table.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

from ..defaults import DTYPE_NAMES
from ..devices import device_name, synchronize
from ..errors import P2PError
from ..images import write_json_atomic
from ..inversion.options import NullTextOptions
from ..loading import load_model
from ..models import Model
from .p2p_checks import p2p_checks
from .parts import GUIDANCE, HELD_OUT_SEED, NULL_TEXT, plain
from .reconstruction import METHODS, reconstruction
from .reweight_checks import REWEIGHT_WORDS
from .text_following import text_following

PARTS = ("text", "reconstruct", "p2p")




def table(results: dict) -> str:
    """A compact text table of the summaries that were run."""
    def number(value, digits=2):
        return "-" if value is None else f"{value:.{digits}f}"

    lines = []
    if "text" in results:
        text = results["text"]["summary"]
        lines.append(f"{'text following':<18}colour {number(text['colour'])}  shape {number(text['shape'])}  "
                     f"both {number(text['both'])}  ({text['count']} captions)")
    if "reconstruct" in results:
        rec = results["reconstruct"]["summary"]
        names = ("vae", *METHODS)
        lines.append(f"{'reconstruction':<18}PSNR "
                     + " / ".join(f"{name} {number(rec[name]['psnr'], 1)}" for name in names)
                     + f" dB  SSIM {' / '.join(number(rec[name]['ssim'], 3) for name in names)}"
                     + f"  ({rec['count']} scenes; null-text > ddim in {number(rec['null_text_better'])})")
    if "p2p" in results:
        p2p = results["p2p"]["summary"]
        rec = p2p["reconstruction"]
        lines.append(f"{'p2p source rec.':<18}reads colour {number(rec['colour'])} shape {number(rec['shape'])}  "
                     f"bg PSNR vs photo {number(rec['background_psnr_source'], 1)} dB  ({p2p['count']} scenes)")
        titles = (("colour_swap", "colour swap"), ("local_blend", "  + LocalBlend"), ("shape_swap", "shape swap"))
        for name, title in titles:
            check = p2p[name]
            extra = (f"colour kept {number(check['colour_kept'])}  "
                     f"centroid shift {number(check['centroid_shift'], 1)} px"
                     if name == "shape_swap" else f"moved to target {number(check['moved_to_target'])}")
            lines.append(f"{title:<18}target read {number(check['success'])}  {extra}  bg PSNR vs rec "
                         f"{number(check['background_psnr_reconstruction'], 1)} / "
                         f"photo {number(check['background_psnr_source'], 1)} dB")
        lines.append(f"{'':<18}LocalBlend bg PSNR >= plain in {number(p2p['local_blend']['at_least_plain'])}")
        for word in REWEIGHT_WORDS:
            sweep = p2p["reweight"][word]
            factors = " ".join(f"{factor:g}" for factor in p2p["reweight"]["factors"])
            lines.append(f"{'reweight ' + word:<18}x({factors}): "
                         f"area {' '.join(f'{v:.0f}' for v in sweep['mean_area'])}  "
                         f"saturation {' '.join(f'{v:.2f}' for v in sweep['mean_saturation'])}  monotone: area "
                         f"{number(sweep['area_monotone'])} saturation {number(sweep['saturation_monotone'])} either "
                         f"{number(sweep['area_or_saturation_monotone'])}  "
                         f"|area change| {number(sweep['mean_abs_area_change'])}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m p2p_real.shapes.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="a shapes model folder (or a built-in name such as tiny-random, for smoke runs)")
    parser.add_argument("--output", required=True, type=Path, help="folder for shapes_eval.json and the figures")
    parser.add_argument("--scenes", type=int, default=50, help="held-out scenes (captions) per part (default: 50)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default: 50)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED,
                        help=f"held-out scene seed (default: {HELD_OUT_SEED}; 0 is the training set)")
    parser.add_argument("--guidance", type=float, default=GUIDANCE,
                        help=f"classifier-free guidance scale (default: {GUIDANCE})")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    parser.add_argument("--batch-size", type=int, default=25,
                        help="pictures sampled or inverted together (default: 25)")
    parser.add_argument("--inner-steps", type=int, default=NullTextOptions.num_inner_steps,
                        help=f"null-text Adam iterations per step at most (default: {NullTextOptions.num_inner_steps})")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--dtype", default="float32", choices=DTYPE_NAMES)
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                        help="run the UNet eagerly on CUDA")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--parts: choose from {', '.join(PARTS)}; got {args.parts!r}")
    if args.seed == 0:
        parser.error("--seed 0 is the training scenes' seed; held-out scenes need another (default 1000)")
    if args.scenes < 1 or args.steps < 1 or args.batch_size < 1:
        parser.error("--scenes, --steps and --batch-size must be at least 1")

    try:
        model = load_model(args.model, args.device, args.dtype, args.cuda_graphs)
    except P2PError as error:
        print(f"python -m p2p_real.shapes.evaluate: {error}", file=sys.stderr)
        return 2
    options = replace(NULL_TEXT, num_inner_steps=args.inner_steps)
    args.output.mkdir(parents=True, exist_ok=True)
    results, timings, figures = run_parts(model, parts, args, options)
    report = {
        "command": " ".join(["python -m p2p_real.shapes.evaluate", *(sys.argv[1:] if argv is None else argv)]),
        "settings": {**{key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
                     "parts": parts, "null_text_options": asdict(options)},
        "device": device_name(model.device),
        "model": {"path": args.model, "name": model.name, "fingerprint": model.fingerprint,
                  "resolution": model.resolution},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": timings,
        "results": results,
        "figures": figures,
    }
    write_json_atomic(args.output / "shapes_eval.json", plain(report))
    print(table(results))
    print(f"-> {args.output / 'shapes_eval.json'} ({', '.join(figures)}); seconds: "
          + ", ".join(f"{name} {seconds:.0f}" for name, seconds in timings.items()))
    return 0


def run_parts(model: Model, parts: list[str], args: argparse.Namespace,
              options: NullTextOptions) -> tuple[dict, dict, list[str]]:
    """Each part's results and seconds, its figures written into args.output; the figures' names."""
    common = {"count": args.scenes, "seed": args.seed, "steps": args.steps, "guidance": args.guidance,
              "batch_size": args.batch_size, "progress": not args.quiet}
    runners = {
        "text": lambda: text_following(model, **common),
        "reconstruct": lambda: reconstruction(model, **common, options=options),
        "p2p": lambda: p2p_checks(model, **common, options=options),
    }
    results, timings, figures = {}, {}, []
    for name in parts:
        started = time.perf_counter()
        part = runners[name]()
        synchronize(model.device)
        timings[name] = round(time.perf_counter() - started, 2)
        results[name] = part.to_json()
        for figure_name, image in part.figures.items():
            image.save(args.output / f"{figure_name}.png")
            figures.append(f"{figure_name}.png")
    return results, timings, figures


if __name__ == "__main__":
    raise SystemExit(main())
