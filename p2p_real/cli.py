"""`p2p-real invert | edit | bench`: parse, call the Python API, print.

Exit 0 when all went well, 1 when some items failed, 2 for bad input or usage (one line, no traceback).
"""
from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
import warnings

from .defaults import BUILTIN_MODELS, DEFAULT_MODEL, DEFAULT_STEPS, DTYPE_CHOICES, INVERSION_METHODS, SMALL_MODEL_STEPS
from .editing.options import EDIT_KINDS, EditOptions
from .errors import P2PError
from .inversion.options import NullTextOptions

EXAMPLES = """examples:
  p2p-real invert data/photos/chelsea.jpg --prompt "a cat sitting on a wooden floor" --output out/
  p2p-real invert data/photos --output out/            # captions from data/photos/captions.json
  p2p-real invert data/photos --output out/ --model tiny-random   # offline smoke run, seconds
  p2p-real invert data/shapes --output out/ --model shapes        # offline, a trained 64x64 model
  p2p-real edit data/shapes --output out/ --model shapes          # the edits in data/shapes/edits.yaml
"""


def wrap(text: str) -> str:
    return textwrap.fill(text, width=100)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2p-real",
        description="Edit real photos with text: null-text inversion and Prompt-to-Prompt on Stable Diffusion.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add_invert(verbs)
    add_edit(verbs)
    add_bench(verbs)
    return parser


def add_model_options(parser: argparse.ArgumentParser) -> None:

    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME_OR_PATH",
                       help=f"hub id or local diffusers folder (default: {DEFAULT_MODEL}); built-in: {', '.join(BUILTIN_MODELS)}")
    group.add_argument("--device", default=None, help="cuda, cuda:1, cpu, ... (default: cuda if available)")
    group.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                       help="weights' precision (default: auto, float16 on a GPU and float32 on the CPU; on a GPU float16 "
                            "is about 5x faster than float32 at the same reconstruction error, bfloat16 as fast but less accurate)")
    group.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                       help="on a GPU, run the UNet eagerly instead of replaying CUDA graphs (slower, same results)")
    group.add_argument("--compile", action="store_true",
                       help="on a GPU, compile the UNet with torch.compile before capturing it: null-text inversion "
                            "about 1.4x faster, after a few minutes of compiling per batch size (worth it for folders)")


def add_invert(verbs) -> None:

    defaults = NullTextOptions()
    parser = verbs.add_parser(
        "invert",
        help="invert photos into editable artifacts (DDIM inversion + null-text optimisation)",
        description=wrap(
            "Invert photos into Stable Diffusion. Each photo becomes OUTPUT/<name>/ with inversion.safetensors, "
            "inversion.json, source.png and reconstruction.png. Captions for a folder come from its captions.json "
            '({"photo.jpg": "a caption", ...}) or from photo.txt beside each photo; --prompt is the fallback.'
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH", help="photos (JPEG, PNG, WebP, ...) or folders of photos")
    parser.add_argument("--prompt", help="the photo's caption (for a folder: used where no caption file gives one)")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="folder for the artifacts")
    add_model_options(parser)
    group = parser.add_argument_group("inversion (defaults are the paper's)")
    group.add_argument("--method", default="null-text", choices=INVERSION_METHODS, help="null-text (default) or plain ddim")
    group.add_argument("--steps", type=int, default=None, help="DDIM steps (default: 50, the papers'; 10 with --model shapes or tiny-random)")
    group.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale (default: 7.5)")
    group.add_argument("--inner-steps", type=int, default=defaults.num_inner_steps, help="Adam steps per timestep at most (default: 10)")
    group.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="Adam rate, decayed by (1 - i/100) (default: 1e-2)")
    group.add_argument("--early-stop", type=float, default=defaults.early_stop_epsilon, help="stop a timestep when loss < this + i*2e-5 (default: 1e-5)")
    group.add_argument("--batch-size", type=int, default=1, help="photos optimised together (default: 1; more is faster on a GPU)")
    parser.add_argument("--force", action="store_true", help="redo photos whose artifact already exists")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.set_defaults(run=run_invert)


def run_invert(args) -> int:
    from .inversion.job import invert_photos
    from .models import load_model
    from .photos import find_photos

    if args.steps < 1 or args.inner_steps < 0 or args.batch_size < 1:
        raise P2PError("--steps and --batch-size must be at least 1, --inner-steps at least 0")
    photos = find_photos(args.inputs, args.prompt)
    single = len(photos) == 1 and len(args.inputs) == 1 and os.path.isfile(args.inputs[0])
    if single and not photos[0].caption:
        raise P2PError(f"{photos[0].path}: no caption; pass --prompt \"what the photo shows\"")
    if single:  # one photo: a bad file is bad input (exit 2), caught before the model loads
        from .images import load_image

        load_image(photos[0].path, 64)
    model = load_model(args.model, args.device, args.dtype, args.cuda_graphs, args.compile)
    options = NullTextOptions(num_inner_steps=args.inner_steps, learning_rate=args.learning_rate, early_stop_epsilon=args.early_stop)
    report = invert_photos(model, photos, args.output, args.method, args.steps, args.guidance, options,
                           args.batch_size, args.force, progress=not args.quiet)
    if single and report.failed:
        raise P2PError(report.failed[0][1])
    for photo, message in report.failed:
        print(f"p2p-real: skipped {photo.path}: {message}", file=sys.stderr)
    psnrs = [inversion.metrics["psnr"] for _, inversion in report.done]
    quality = f"; mean reconstruction PSNR {sum(psnrs) / len(psnrs):.2f} dB" if psnrs else ""
    print(f"inverted {len(report.done)} photo(s) in {report.seconds:.1f} s, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed{quality} -> {args.output}")
    return 1 if report.failed else 0


def add_edit(verbs) -> None:
    parser = verbs.add_parser(
        "edit",
        help="edit an inverted photo by changing its caption (Prompt-to-Prompt)",
        description=wrap(
            "Edit a photo by changing its caption. INPUT is an artifact folder from `p2p-real invert`, or a photo "
            "with --prompt (it is inverted first and its artifact kept in OUTPUT/<photo>/), or an edits file "
            "(edits.yaml / edits.json, or a folder holding one) listing many edits. Each edit writes "
            "OUTPUT/<photo>/<edit>/edited.png and grid.png (source | reconstruction | edit), each with a JSON "
            "sidecar; edits already done with the same settings are skipped unless --force."
        ),
        epilog=(
            "examples:\n"
            '  p2p-real edit out/chelsea --target "a close-up photo of a tabby dog" --output edits/\n'
            '  p2p-real edit out/chelsea --target "a close-up photo of a fluffy tabby cat" --output edits/\n'
            '  p2p-real edit out/chelsea --target "a close-up photo of a tabby dog" --blend cat dog --output edits/\n'
            '  p2p-real edit out/chelsea --target "a close-up photo of a tabby cat" --reweight tabby=2 --output edits/\n'
            "  p2p-real edit data/photos --output out/     # the edits listed in data/photos/edits.yaml"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="INPUT", help="an artifact folder, a photo with --prompt, or an edits file / a folder holding one")
    parser.add_argument("--target", help="the edited caption")
    parser.add_argument("--name", help="output folder name for this edit (default: from the target)")
    parser.add_argument("--prompt", help="the photo's caption, when INPUT is a photo")
    parser.add_argument("--output", "-o", required=True, metavar="DIR")
    add_model_options(parser)
    group = parser.add_argument_group("edit (defaults are PIE-Bench's P2P settings)")
    group.add_argument("--kind", default="auto", choices=EDIT_KINDS,
                       help="replace (word swap), refine (add words), reweight; auto picks replace or refine")
    group.add_argument("--cross-replace-steps", type=float, default=0.4, metavar="FRACTION",
                       help="fraction of steps in which the target takes the source's cross-attention (default: 0.4)")
    group.add_argument("--self-replace-steps", type=float, default=0.6, metavar="FRACTION",
                       help="fraction of steps in which the target takes the source's self-attention (default: 0.6)")
    group.add_argument("--blend", nargs=2, metavar=("SOURCE_WORD", "TARGET_WORD"),
                       help="LocalBlend: change only where these words attend")
    group.add_argument("--reweight", action="append", default=[], metavar="WORD=FACTOR",
                       help="scale a target word's attention by FACTOR in [-2, 2]; repeatable")
    group.add_argument("--word-steps", action="append", default=[], metavar="WORD=START,END",
                       help="a target word's own cross-replacement window, e.g. dog=0,0.8; repeatable")
    group.add_argument("--steps", type=int, default=None,
                       help="DDIM steps when a photo is inverted first (default: 50; 10 with --model shapes or tiny-random)")
    group.add_argument("--batch-size", type=int, default=1, help="photos inverted together when they are inverted first (default: 1)")
    parser.add_argument("--maps", action="store_true", help="also write maps.png: the edit's cross-attention per target token")
    parser.add_argument("--force", action="store_true", help="redo edits that are already done")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.set_defaults(run=run_edit)


def parse_reweights(values: list[str]) -> dict[str, float]:
    weights = {}
    for value in values:
        word, _, factor = value.rpartition("=")
        try:
            weights[word] = float(factor)
        except ValueError:
            raise P2PError(f"--reweight {value!r}: expected WORD=FACTOR, e.g. fluffy=2") from None
        if not word:
            raise P2PError(f"--reweight {value!r}: expected WORD=FACTOR, e.g. fluffy=2")
    return weights


def run_edit(args) -> int:
    from pathlib import Path

    from .artifacts import load_inversion
    from .editing.job import EDITS_FILES, EditJob, read_edits_file, run_edits
    from .images import load_image
    from .models import load_model

    source = Path(args.input)
    edits_file = next((source / name for name in EDITS_FILES if (source / name).is_file()), None) if source.is_dir() else None
    if source.is_file() and source.suffix.lower() in (".json", ".yaml", ".yml"):
        edits_file = source
    if edits_file is not None:
        jobs = read_edits_file(edits_file)
    else:
        if not args.target:
            raise P2PError(f"{source}: give --target \"the edited caption\" (or pass a folder or file of edits: {', '.join(EDITS_FILES)})")
        if source.is_dir():
            load_inversion(source)  # a damaged artifact fails before the model loads
        elif source.is_file():
            if not args.prompt:
                raise P2PError(f"{source}: a photo needs --prompt with its caption (or pass an artifact folder)")
            load_image(source, 64)
        else:
            raise P2PError(f"{source}: no such artifact folder, photo or edits file")
        windows = {"default_": args.cross_replace_steps, **parse_word_windows(args.word_steps)} if args.word_steps else args.cross_replace_steps
        options = EditOptions(
            kind=args.kind, cross_replace_steps=windows, self_replace_steps=args.self_replace_steps,
            reweights=parse_reweights(args.reweight), blend_words=tuple(args.blend) if args.blend else None,
        )
        jobs = [EditJob(source, args.target, options, args.prompt, args.name or "")]
    if args.batch_size < 1:
        raise P2PError(f"--batch-size must be at least 1; got {args.batch_size}")
    model = load_model(args.model, args.device, args.dtype, args.cuda_graphs, args.compile)
    report = run_edits(model, jobs, args.output, args.steps, args.force, args.maps, progress=not args.quiet,
                       batch_size=args.batch_size)
    single = edits_file is None
    if single and report.failed:
        raise P2PError(report.failed[0][1])
    for job, message in report.failed:
        print(f"p2p-real: skipped the edit {job.target!r} of {job.source}: {message}", file=sys.stderr)
    for job, folder in report.done if single else []:
        print(f"edited {job.source} -> {folder}/edited.png (grid.png{', maps.png' if args.maps else ''})")
    print(f"{len(report.done)} edit(s) in {report.seconds:.1f} s, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed -> {args.output}")
    return 1 if report.failed else 0


def parse_word_windows(values: list[str]) -> dict[str, tuple[float, float]]:
    windows = {}
    for value in values:
        word, _, bounds = value.rpartition("=")
        try:
            start, end = (float(part) for part in bounds.split(","))
        except ValueError:
            raise P2PError(f"--word-steps {value!r}: expected WORD=START,END, e.g. dog=0,0.8") from None
        windows[word] = (start, end)
    return windows


NETWORK_METRICS = ("lpips", "clip", "structure")


def add_bench(verbs) -> None:
    parser = verbs.add_parser(
        "bench", help="benchmark inversion methods (reconstruct) or edits (edit, PIE-Bench format)",
        description=wrap(
            "Benchmarks. `reconstruct` inverts each photo of a folder with each method and reports PSNR, SSIM, "
            "MSE, LPIPS and seconds per photo. `edit` runs a PIE-Bench mapping_file.json (or an edits file) and "
            "reports structure distance, background PSNR/LPIPS/MSE/SSIM outside the edit mask and CLIP scores, "
            "with means per edit type. Both print a table and write JSON; reconstruct also plots quality "
            "against time. LPIPS, CLIP (ViT-L/14) and DINO weights come from the local caches; "
            "--metric-weights random uses small random networks for offline smoke runs (not scores)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  p2p-real bench reconstruct data/photos --output bench/ --methods ddim,negative-prompt,direct,null-text\n"
            "  p2p-real bench edit data/pie_bench/mapping_file.json --output bench/\n"
            "  p2p-real bench reconstruct data/photos --output bench/ --model tiny-random --steps 5 --metric-weights random"
        ),
    )
    kinds = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name, default_metrics, help_text in (
        ("reconstruct", "lpips", "reconstruction quality and time per inversion method"),
        ("edit", "lpips,clip,structure", "edit quality on a PIE-Bench mapping file or an edits file"),
    ):
        bench = kinds.add_parser(name, help=help_text, description=help_text)
        bench.add_argument("input", metavar="PATH", help="a folder of captioned photos" if name == "reconstruct"
                           else "a PIE-Bench mapping_file.json, or an edits file (YAML/JSON)")
        bench.add_argument("--output", "-o", required=True, metavar="DIR")
        add_model_options(bench)
        if name == "reconstruct":
            bench.add_argument("--methods", default=",".join(INVERSION_METHODS),
                               help=f"comma-separated, from {', '.join(INVERSION_METHODS)} (default: all)")
        else:
            bench.add_argument("--method", default="null-text", choices=INVERSION_METHODS, help="inversion method (default: null-text)")
        bench.add_argument("--steps", type=int, default=None, help="DDIM steps (default: 50, the papers'; 10 with --model shapes or tiny-random)")
        bench.add_argument("--metrics", default=default_metrics,
                           help=f"network metrics beside PSNR/SSIM/MSE: comma-separated from {', '.join(NETWORK_METRICS)}, or none (default: {default_metrics})")
        bench.add_argument("--metric-weights", default="pretrained", choices=("pretrained", "random"),
                           help="random: small random metric networks, for offline smoke runs only")
        bench.add_argument("--clip-model", default=None, metavar="NAME_OR_PATH",
                           help="CLIP for CLIP scores (default: openai/clip-vit-large-patch14, as PIE-Bench)")
        bench.add_argument("--structure-model", default=None, metavar="NAME_OR_PATH",
                           help="DINO ViT for structure distance (default: facebook/dino-vitb8, as PIE-Bench)")
        bench.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
        bench.set_defaults(run=run_bench)


def run_bench(args) -> int:
    from pathlib import Path

    from .eval import bench
    from .eval.pie_bench import read_bench_edits
    from .models import load_model
    from .photos import find_photos

    output = Path(args.output)
    names = set() if args.metrics == "none" else set(filter(None, args.metrics.split(",")))
    if names - set(NETWORK_METRICS):
        raise P2PError(f"--metrics: unknown {', '.join(sorted(names - set(NETWORK_METRICS)))}; choose from {', '.join(NETWORK_METRICS)} or none")
    if args.bench == "reconstruct":
        methods = [method.strip() for method in args.methods.split(",") if method.strip()]
        unknown = [method for method in methods if method not in INVERSION_METHODS]
        if unknown or not methods:
            raise P2PError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(INVERSION_METHODS)}")
        photos = find_photos([args.input])
        missing = [str(photo.path) for photo in photos if not photo.caption]
        if missing:
            raise P2PError(f"no caption for {', '.join(missing)}: add them to captions.json")
        model = load_model(args.model, args.device, args.dtype, args.cuda_graphs, args.compile)
        metric_models = bench.MetricModels.load(names, args.metric_weights, model.device, "alex")
        rows = bench.bench_reconstruct(model, photos, methods, metric_models, args.steps, progress=not args.quiet)
        columns = ["seconds", "psnr", "ssim", "mse", "latent_mse"] + (["lpips"] if metric_models.lpips else [])
        summary = bench.summarize(rows, "method", columns)
        device = bench.device_name(model.device)
        bench.write_json(output / "reconstruct.json", {"model": model.name, "device": device, "steps": args.steps,
                                                       "metric_weights": args.metric_weights, "summary": summary, "rows": rows})
        bench.plot_quality_against_time(summary, output / "reconstruct.png", device)
        print(bench.format_table(summary, columns, "method"))
        print(f"-> {output / 'reconstruct.json'}, {output / 'reconstruct.png'}")
    else:
        edits = read_bench_edits(Path(args.input))
        model = load_model(args.model, args.device, args.dtype, args.cuda_graphs, args.compile)
        # PIE-Bench's LPIPS runs on SqueezeNet.
        metric_models = bench.MetricModels.load(names, args.metric_weights, model.device, "squeeze",
                                                args.clip_model, args.structure_model)
        rows = bench.bench_edit(model, edits, output, metric_models, args.method, args.steps, progress=not args.quiet)
        columns = ["structure", "psnr_bg", "lpips_bg", "mse_bg", "ssim_bg", "clip_whole", "clip_edited"]
        summary = bench.summarize(rows, "type", columns)
        bench.write_json(output / "edit.json", {"model": model.name, "device": bench.device_name(model.device),
                                                "method": args.method, "steps": args.steps,
                                                "metric_weights": args.metric_weights, "summary": summary, "rows": rows})
        print(bench.format_table(summary, columns, "edit type"))
        print(f"-> {output / 'edit.json'}, edited images in {output / 'edits'}")
    failed = [row for row in rows if "error" in row]
    for row in failed:
        print(f"p2p-real: failed: {row.get('photo') or row.get('key')}: {row['error']}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "steps", 0) is None:  # the paper's 50, but seconds-fast runs on the smoke model
        args.steps = SMALL_MODEL_STEPS.get(args.model, DEFAULT_STEPS)
    # Library deprecation chatter is not for users of a command-line tool.
    warnings.filterwarnings("ignore", category=UserWarning, module="huggingface_hub|diffusers|transformers")
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        return args.run(args)
    except P2PError as error:
        print(f"p2p-real: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("p2p-real: interrupted; finished photos are kept, run again to resume", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: one line, the traceback on request
        if os.environ.get("P2P_REAL_DEBUG"):
            traceback.print_exc()
        print(f"p2p-real: internal error: {type(error).__name__}: {error} (set P2P_REAL_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
