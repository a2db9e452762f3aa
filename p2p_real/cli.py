"""`p2p-real invert ...`: parse, call the Python API, print. Exit 0 ok, 1 some items failed, 2 bad input."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings

from .defaults import BUILTIN_MODELS, DEFAULT_MODEL, DTYPE_NAMES, INVERSION_METHODS
from .errors import P2PError
from .inversion.options import NullTextOptions

EXAMPLES = """examples:
  p2p-real invert data/photos/chelsea.jpg --prompt "a cat sitting on a wooden floor" --output out/
  p2p-real invert data/photos --output out/            # captions from data/photos/captions.json
  p2p-real invert data/photos --output out/ --model tiny-random   # offline smoke run, seconds
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2p-real",
        description="Edit real photos with text: null-text inversion and Prompt-to-Prompt on Stable Diffusion.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add_invert(verbs)
    return parser


def add_model_options(parser: argparse.ArgumentParser) -> None:

    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME_OR_PATH",
                       help=f"hub id or local diffusers folder (default: {DEFAULT_MODEL}); built-in: {', '.join(BUILTIN_MODELS)}")
    group.add_argument("--device", default=None, help="cuda, cuda:1, cpu, ... (default: cuda if available)")
    group.add_argument("--dtype", default="float32", choices=DTYPE_NAMES, help="weights' precision (default: float32)")


def add_invert(verbs) -> None:

    defaults = NullTextOptions()
    parser = verbs.add_parser(
        "invert",
        help="invert photos into editable artifacts (DDIM inversion + null-text optimisation)",
        description=(
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
    group.add_argument("--steps", type=int, default=50, help="DDIM steps (default: 50)")
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
    model = load_model(args.model, args.device, args.dtype)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
