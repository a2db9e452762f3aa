"""The command line's grammar: every verb, its flags and the help that teaches them. cli.py parses
with it and runs what was asked."""
from __future__ import annotations

import argparse
import textwrap

from .defaults import (
    DEFAULT_GUIDANCE,
    DEFAULT_METHOD,
    INVERSION_METHODS,
    NETWORK_METRICS,
    SD3_GUIDANCE,
)
from .eval.pareto import DEFAULT_TOLERANCE
from .inversion.options import NullTextOptions
from .model_flags import add_model_options
from .runs.edit_flags import add_edit_flags
from .runs.flags import (
    bench_edit_request,
    bench_reconstruct_request,
    edit_request,
    invert_request,
    sweep_request,
    ui_request,
)
from .runs.sweep_grid import DEFAULT_CROSS, DEFAULT_SELF, DEFAULT_SETTINGS_PER_PASS

EXAMPLES = """examples:
  p2p-real invert data/photos/chelsea.jpg --prompt "a cat sitting on a wooden floor" --output out/
  p2p-real invert data/photos --output out/            # captions from data/photos/captions.json
  p2p-real invert data/photos --output out/ --model tiny-random   # offline smoke run, seconds
  p2p-real invert data/shapes --output out/ --model shapes        # offline, a trained 64x64 model
  p2p-real invert data/photos --output out/ --model my-model.safetensors --lora my-style.safetensors:0.8
  p2p-real edit data/shapes --output out/ --model shapes          # the edits in data/shapes/edits.yaml
  p2p-real sweep out/circle --target "a large red circle on a plain white background" --output sweep/ --metrics none
  p2p-real ui --output out/ --model shapes                        # a web page: invert, then edit as often as you like
"""
STEPS_HELP = ("sampling steps (default: the model family's: 50 for SD v1 and SDXL, the papers'; 28 for SD3, its "
              "pipeline's; 10 with --model shapes or the tiny built-ins)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2p-real", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Edit real photos with text: null-text inversion and Prompt-to-Prompt on Stable Diffusion.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for add_verb in (add_invert, add_edit, add_sweep, add_bench, add_ui):
        add_verb(verbs)
    return parser


def add_common_options(parser: argparse.ArgumentParser, batch_verb: bool = True) -> None:
    """--output and the model options, which every verb takes; --gpus and --quiet for the verbs that
    run a batch of work on the terminal (not the ui's page)."""
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="folder for the results")
    group = parser.add_argument_group("model")
    add_model_options(group)
    if batch_verb:
        group.add_argument("--gpus", type=int, default=1, metavar="N", help="N processes, one GPU each, sharing the "
                           "work (as `torchrun --nproc-per-node N -m p2p_real ...`; for many machines use torchrun "
                           "itself) (default: 1)")
        parser.add_argument("--quiet", "-q", dest="progress", action="store_false", help="no progress bars")


def add_invert(verbs) -> None:
    parser = verbs.add_parser(
        "invert", help="invert photos into editable artifacts (DDIM inversion + null-text optimisation)",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter, description=textwrap.fill(
            "Invert photos into Stable Diffusion. Each photo becomes OUTPUT/<name>/ with inversion.safetensors, "
            "inversion.json, source.png and reconstruction.png. Captions for a folder come from its captions.json "
            '({"photo.jpg": "a caption", ...}) or from photo.txt beside each photo; --prompt is the fallback.', 100),
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH", help="photos (JPEG, PNG, WebP, ...) or folders of photos")
    parser.add_argument("--prompt", help="the photo's caption (for a folder: used where no caption file gives one)")
    add_common_options(parser)
    group = parser.add_argument_group("inversion (defaults are the paper's)")
    group.add_argument("--method", default=DEFAULT_METHOD, choices=INVERSION_METHODS, help="null-text (default: DDIM "
                       "inversion, then a null text optimised per step), ddim (DDIM inversion alone), negative-prompt "
                       "(the caption as the null text) or direct (per-step latent offsets)")
    group.add_argument("--steps", type=int, default=None, help=STEPS_HELP)
    group.add_argument("--guidance", type=float, default=None,
                       help=f"classifier-free guidance scale (default: the model family's: {DEFAULT_GUIDANCE} for "
                            f"SD v1 and SDXL, {SD3_GUIDANCE} for SD3)")
    group.add_argument("--inner-steps", type=int, default=NullTextOptions.num_inner_steps,
                       help="Adam steps per timestep at most (default: 10)")
    group.add_argument("--learning-rate", type=float, default=NullTextOptions.learning_rate,
                       help="Adam rate, decayed by (1 - i/100) (default: 1e-2)")
    group.add_argument("--early-stop", type=float, default=NullTextOptions.early_stop_epsilon,
                       help="stop a timestep when loss < this + i*2e-5 (default: 1e-5)")
    group.add_argument("--batch-size", default="auto", metavar="N|auto", help="photos optimised together; auto "
                       "(default): as many as free CUDA memory holds, up to 16 (1 on the CPU or MPS)")
    parser.add_argument("--force", action="store_true", help="redo photos whose artifact already exists")
    parser.set_defaults(build=invert_request)


def add_edit(verbs) -> None:
    parser = verbs.add_parser(
        "edit", help="edit an inverted photo by changing its caption (Prompt-to-Prompt)",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=textwrap.fill(
            "Edit a photo by changing its caption. INPUT is an artifact folder from `p2p-real invert`, or a "
            "photo with --prompt (it is inverted first and its artifact kept in OUTPUT/<photo>/), or an edits "
            "file (edits.yaml / edits.json, or a folder holding one) listing many edits. Each edit writes "
            "OUTPUT/<photo>/<edit>/edited.png and grid.png (source | reconstruction | edit), each with a JSON "
            "sidecar; edits already done with the same settings are skipped unless --force.", 100),
        epilog=(
            "examples:\n"
            '  p2p-real edit out/chelsea --target "a close-up photo of a tabby dog" --output edits/\n'
            '  p2p-real edit out/chelsea --target "a close-up photo of a fluffy tabby cat" --output edits/\n'
            '  p2p-real edit out/chelsea --target "a close-up photo of a tabby dog" --blend cat dog '
            '--output edits/\n'
            '  p2p-real edit out/chelsea --target "a close-up photo of a tabby dog" --mask cat-mask.png '
            '--output edits/\n'
            '  p2p-real edit out/chelsea --target "a close-up photo of a tabby cat" --reweight tabby=2 '
            '--output edits/\n'
            "  p2p-real edit data/photos --output out/     # the edits listed in data/photos/edits.yaml"
        ),
    )
    parser.add_argument("source", metavar="INPUT",
                        help="an artifact folder, a photo with --prompt, or an edits file / a folder holding one")
    parser.add_argument("--target", help="the edited caption")
    parser.add_argument("--name", help="output folder name for this edit (default: from the target)")
    parser.add_argument("--prompt", help="the photo's caption, when INPUT is a photo")
    add_common_options(parser)
    group = parser.add_argument_group("edit (defaults are PIE-Bench's P2P settings)")
    add_edit_flags(group, "edit")
    group.add_argument("--mask", metavar="IMAGE", help="change only where this painted mask (PNG or JPEG, lined up "
                       "with the photo) is white, or opaque if it has transparency; black keeps the photo; with "
                       "--blend, only where both say so")
    group.add_argument("--steps", type=int, default=None, help="DDIM steps when a photo is inverted first (default: "
                       "50; 10 with --model shapes or tiny-random)")
    group.add_argument("--batch-size", default="auto", metavar="N|auto", help="photos inverted together when they are "
                       "inverted first; auto (default): as many as free CUDA memory holds, up to 16 (1 on the CPU or "
                       "MPS)")
    parser.add_argument("--maps", action="store_true",
                        help="also write maps.png: the edit's cross-attention per target token")
    parser.add_argument("--force", action="store_true",
                        help="redo edits; also replace kept inversions and named edits made with other settings")
    parser.set_defaults(build=edit_request)


def add_sweep(verbs) -> None:
    parser = verbs.add_parser(
        "sweep", help="find an edit's strength: a grid of cross/self-replace steps, scored for fidelity and edit",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=textwrap.fill(
            "Edit one photo towards one target with every setting of a grid of cross-replace steps x "
            "self-replace steps (x LocalBlend thresholds with --blend), several settings per sampling pass "
            "(--settings-per-pass), and PIE-Bench's 0.4 / 0.6 beside them. Each edit is scored for fidelity "
            "(background PSNR and LPIPS against the photo: outside the region every setting's LocalBlend mask "
            "covers, or the whole picture) and for the edit (CLIP score of the target; with --model shapes, "
            "the colour and shape read back). Chosen: of the settings whose edit score is within "
            "--edit-tolerance of the best, the most faithful. OUTPUT gets grid.png, plot.png (fidelity "
            "against edit, the Pareto front), sweep.json, best.yaml (an edits file for `p2p-real edit`) and "
            "edits/.", 100),
        epilog=(
            "examples:\n"
            '  p2p-real sweep out/chelsea --target "a close-up photo of a tabby dog" --output sweep/\n'
            '  p2p-real sweep out/chelsea --target "a close-up photo of a tabby dog" --blend cat dog '
            '--thresholds 0.2,0.3,0.5 --output sweep/\n'
            '  p2p-real sweep data/shapes/circle.png --prompt "a large blue circle on a plain white background" \\\n'
            '      --target "a large red circle on a plain white background" --model shapes --metrics none '
            '--output sweep/\n'
            "  p2p-real edit sweep/best.yaml --output edits/     # the chosen setting"
        ),
    )
    parser.add_argument("source", metavar="INPUT",
                        help="an artifact folder from `p2p-real invert`, or a photo with --prompt")
    parser.add_argument("--target", help="the edited caption")
    parser.add_argument("--prompt", help="the photo's caption, when INPUT is a photo")
    add_common_options(parser)
    group = parser.add_argument_group("grid")
    group.add_argument("--cross", dest="cross_grid", default=DEFAULT_CROSS, metavar="FRACTIONS",
                       help="cross-replace steps to try, comma-separated fractions in [0, 1] "
                       f"(default: {DEFAULT_CROSS})")
    group.add_argument("--self", dest="self_grid", default=DEFAULT_SELF, metavar="FRACTIONS",
                       help=f"self-replace steps to try (default: {DEFAULT_SELF})")
    add_edit_flags(group, "sweep", {"--kind": "replace, refine, reweight; auto picks replace or refine",
                                    "--reweight": "scale a target word's attention; repeatable"})
    group.add_argument("--thresholds", metavar="FRACTIONS",
                       help="with --blend: LocalBlend thresholds to try (default: 0.3)")
    group.add_argument("--settings-per-pass", type=int, default=DEFAULT_SETTINGS_PER_PASS, metavar="N",
                       help=f"settings sampled together in one pass (default: {DEFAULT_SETTINGS_PER_PASS})")
    group.add_argument("--steps", type=int, default=None, help="DDIM steps when a photo is inverted first (default: "
                       "50; 10 with --model shapes or tiny-random)")
    group = parser.add_argument_group("scores")
    group.add_argument("--metrics", help="network metrics: comma-separated from lpips, clip, structure, or none "
                       "(default: lpips,clip; "
                       "lpips with --model shapes, whose edits are read by shapes/check.py); the edit score needs clip "
                       "otherwise")
    group.add_argument("--metric-weights", default="pretrained", choices=("pretrained", "random"),
                       help="random: small random metric networks, for offline smoke runs only")
    group.add_argument("--clip-model", metavar="NAME_OR_PATH",
                       help="CLIP for CLIP scores (default: openai/clip-vit-large-patch14, as PIE-Bench)")
    group.add_argument("--edit-tolerance", type=float, default=DEFAULT_TOLERANCE, metavar="FRACTION",
                       help="how far below the best edit score the chosen setting may be, as a fraction of the "
                       f"grid's range (default: {DEFAULT_TOLERANCE})")
    parser.add_argument("--force", action="store_true",
                        help="replace a kept inversion of the photo made with other settings")
    parser.set_defaults(build=sweep_request)


def add_bench(verbs) -> None:
    parser = verbs.add_parser(
        "bench", help="benchmark inversion methods (reconstruct) or edits (edit, PIE-Bench format)",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=textwrap.fill(
            "Benchmarks. `reconstruct` inverts each photo of a folder with each method and reports PSNR, "
            "SSIM, MSE, LPIPS and seconds per photo. `edit` runs a PIE-Bench mapping_file.json (or an edits "
            "file) and reports structure distance, background PSNR/LPIPS/MSE/SSIM outside the edit mask and "
            "CLIP scores, with means per edit type. Both print a table and write JSON; reconstruct also plots "
            "quality against time. LPIPS, CLIP (ViT-L/14) and DINO weights come from the local caches; "
            "--metric-weights random uses small random networks for offline smoke runs (not scores).", 100),
        epilog=(
            "examples:\n"
            "  p2p-real bench reconstruct data/photos --output bench/ --methods ddim,negative-prompt,direct,null-text\n"
            "  p2p-real bench edit data/pie_bench/mapping_file.json --output bench/\n"
            "  p2p-real bench reconstruct data/photos --output bench/ --model tiny-random --steps 5 "
            "--metric-weights random"
        ),
    )
    kinds = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name, default_metrics, help_text, source_help in (
        ("reconstruct", "lpips", "reconstruction quality and time per inversion method",
         "a folder of captioned photos"),
        ("edit", "lpips,clip,structure", "edit quality on a PIE-Bench mapping file or an edits file",
         "a PIE-Bench mapping_file.json, or an edits file (YAML/JSON)"),
    ):
        bench = kinds.add_parser(name, help=help_text, description=help_text)
        bench.add_argument("source", metavar="PATH", help=source_help)
        add_common_options(bench)
        if name == "reconstruct":
            bench.add_argument("--methods", default=",".join(INVERSION_METHODS),
                               help=f"comma-separated, from {', '.join(INVERSION_METHODS)} (default: all)")
        else:
            bench.add_argument("--method", default=DEFAULT_METHOD, choices=INVERSION_METHODS,
                               help=f"inversion method (default: {DEFAULT_METHOD})")
        bench.add_argument("--steps", type=int, default=None, help=STEPS_HELP)
        bench.add_argument("--metrics", default=default_metrics,
                           help="network metrics beside PSNR/SSIM/MSE: comma-separated from "
                           f"{', '.join(NETWORK_METRICS)}, or none (default: {default_metrics})")
        bench.add_argument("--metric-weights", default="pretrained", choices=("pretrained", "random"),
                           help="random: small random metric networks, for offline smoke runs only")
        bench.add_argument("--clip-model", metavar="NAME_OR_PATH",
                           help="CLIP for CLIP scores (default: openai/clip-vit-large-patch14, as PIE-Bench)")
        bench.add_argument("--structure-model", metavar="NAME_OR_PATH",
                           help="DINO ViT for structure distance (default: facebook/dino-vitb8, as PIE-Bench)")
        if name == "edit":
            bench.add_argument("--structure-pixels", default="pie-bench", choices=("pie-bench", "splice"),
                               help="structure distance's input: pie-bench (default) as the papers, 0-255 values "
                                    "resized without antialiasing; splice: [0, 1] values, antialiased (recorded in "
                                    "edit.json)")
        bench.set_defaults(build=bench_reconstruct_request if name == "reconstruct" else bench_edit_request)


def add_ui(verbs) -> None:
    parser = verbs.add_parser(
        "ui", help="a local web page: invert a photo once, then edit it as often as you like (needs p2p-real[ui])",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=textwrap.fill(
            "Serve a web page (Gradio) on this machine: upload a photo or pick one, type its caption, invert "
            "it, then edit it as often as you like (target caption, kind, LocalBlend words, re-weights, "
            "replacement windows, a mask painted over the photo) and see source | reconstruction | edit and the "
            "edit's attention per word; sweep the edit's strength (as p2p-real sweep) and use a setting it found. "
            "Everything is written to OUTPUT exactly as `p2p-real invert`, `edit` and `sweep` write it, so "
            'the page and the command line share their work. Needs the ui extra: pip install "p2p-real[ui]".', 100),
        epilog=(
            "examples:\n"
            "  p2p-real ui --output out/ --model shapes                 # offline, on a CPU\n"
            "  p2p-real ui --output out/ data/photos                    "
            "# pick photos of data/photos (captions from captions.json)\n"
            "  p2p-real ui --output edits/ out/                         "
            "# pick inversions kept in out/ by `p2p-real invert`"
        ),
    )
    parser.add_argument("inputs", nargs="*", metavar="PHOTOS_OR_FOLDER", help="photos, folders of photos, or "
                        "folders of kept inversions to pick from (the inversions kept in OUTPUT are always offered)")
    add_common_options(parser, batch_verb=False)
    group = parser.add_argument_group("inversion (defaults are the paper's)")
    group.add_argument("--method", default=DEFAULT_METHOD, choices=INVERSION_METHODS,
                       help=f"inversion method (default: {DEFAULT_METHOD})")
    group.add_argument("--steps", type=int, default=None, help=STEPS_HELP)
    group = parser.add_argument_group("server")
    group.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine "
                       "only; 0.0.0.0 lets other machines in)")
    group.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    group.add_argument("--share", action="store_true", help="also serve through a temporary public gradio.live link "
                       "(needs internet; off by default)")
    group = parser.add_argument_group("the page's sweep (as p2p-real sweep)")
    group.add_argument("--metric-weights", default="pretrained", choices=("pretrained", "random"),
                       help="random: small random metric networks, for offline smoke runs only")
    parser.set_defaults(build=ui_request)
