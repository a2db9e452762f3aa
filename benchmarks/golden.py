"""Golden outputs: the proof that a refactor left behaviour unchanged.

    python benchmarks/golden.py write docs/results/golden/before.safetensors   # on the old code
    python benchmarks/golden.py compare docs/results/golden/before.safetensors # on the new code
    python benchmarks/golden.py compare docs/results/golden/before.safetensors --models shapes  # tests/test_golden.py

Uses only the public API (load_model, load_image, invert, edit, EditOptions), in float32 on the CPU,
so the same script runs on both sides of a change. For `tiny-random` and `shapes` it records each
inversion method's artifact (x_T, per-step embeddings, offsets, reconstruction pixels, metrics) and
the edited pixels, source-branch pixels, attention maps and LocalBlend mask of swap, refine,
re-weight, LocalBlend, per-word windows and chained refine + re-weight, on null-text and Direct
Inversion artifacts. `compare` prints the largest difference per entry and exits 1 past tolerance.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2p_real import EditOptions, edit, invert, load_image, load_model  # noqa: E402

METHODS = ("ddim", "negative-prompt", "direct", "null-text")
CASES = {
    "tiny-random": {
        "steps": 6,
        "photos": ["data/photos/chelsea.jpg", "data/photos/coffee.jpg"],
        "prompts": ["a close-up photo of a tabby cat", "a cup of coffee on a red saucer"],
        "edits": {
            "swap": ("a close-up photo of a tabby dog", EditOptions()),
            "refine": ("a close-up photo of a fluffy tabby cat", EditOptions()),
            "reweight": ("a close-up photo of a tabby cat", EditOptions(reweights={"tabby": 2.0})),
            "blend": ("a close-up photo of a tabby dog", EditOptions(blend_words=("cat", "dog"), blend_threshold=0.9)),
            "windows": ("a close-up photo of a tabby dog",
                        EditOptions(cross_replace_steps={"default_": 0.5, "dog": (0.2, 0.9)},
                                    self_replace_steps=(0.2, 0.7))),
            "refine_reweight": ("a close-up photo of a fluffy tabby cat", EditOptions(reweights={"fluffy": -1.5})),
        },
    },
    "shapes": {
        "steps": 10,
        "photos": ["data/shapes/circle.png", "data/shapes/triangle.png"],
        "prompts": ["a large blue circle on a plain white background",
                    "a large yellow triangle on a plain green background"],
        "edits": {
            "swap": ("a large red circle on a plain white background", EditOptions()),
            "refine": ("a large blue circle on a plain white background with stripes", EditOptions()),
            "reweight": ("a large blue circle on a plain white background", EditOptions(reweights={"blue": 2.0})),
            "blend": ("a large red circle on a plain white background", EditOptions(blend_words=("circle", "circle"))),
            "windows": ("a large red circle on a plain white background",
                        EditOptions(cross_replace_steps={"default_": 0.4, "red": (0.0, 0.8)})),
            "refine_reweight": ("a large blue circle on a plain white background with stripes",
                                EditOptions(reweights={"stripes": 2.0})),
        },
    },
}
# float32 on the CPU: a refactor that reorders sums may move the last bits (the tiny model's random
# attention amplifies them least); uint8 pixels may flip by one level where a value sits on .5.
TOLERANCES = {"pixels": 1, "float_relative": 1e-4}


def record(model_names=tuple(CASES)) -> tuple[dict[str, torch.Tensor], dict]:
    torch.set_num_threads(2)
    tensors, scalars = {}, {}
    for model_name in model_names:
        case = CASES[model_name]
        model = load_model(model_name, device="cpu", dtype="float32")
        photos = [load_image(path, model.resolution) for path in case["photos"]]
        inversions = {}
        for method in METHODS:
            results = invert(model, photos, case["prompts"], method=method, num_steps=case["steps"])
            for index, inversion in enumerate(results):
                key = f"{model_name}/{method}/{index}"
                tensors[f"{key}/noise_latents"] = inversion.noise_latents
                tensors[f"{key}/null_text_embeddings"] = inversion.null_text_embeddings
                tensors[f"{key}/reconstruction"] = inversion.reconstruction
                if inversion.latent_offsets is not None:
                    tensors[f"{key}/latent_offsets"] = inversion.latent_offsets
                scalars[key] = inversion.metrics
            inversions[method] = results[0]
        for method in ("null-text", "direct"):
            for edit_name, (target, options) in case["edits"].items():
                result = edit(model, inversions[method], target, options)
                key = f"{model_name}/edit/{method}/{edit_name}"
                tensors[f"{key}/edited"] = result.edited
                tensors[f"{key}/reconstruction"] = result.reconstruction
                # the target's first tokens
                tensors[f"{key}/cross_maps"] = result.cross_maps[1].mean(0)[..., :16].contiguous()
                if result.mask is not None:
                    tensors[f"{key}/mask"] = result.mask
                scalars[key] = {"kind": result.kind}
    return tensors, scalars


def difference(name: str, before: torch.Tensor, after: torch.Tensor) -> tuple[float, bool]:
    if before.shape != after.shape:
        return float("inf"), False
    if before.dtype == torch.uint8:
        worst = float((before.int() - after.int()).abs().max())
        return worst, worst <= TOLERANCES["pixels"]
    worst = float((before.double() - after.double()).abs().max() / before.double().abs().max().clamp_min(1e-12))
    return worst, worst <= TOLERANCES["float_relative"]


def compare(path: Path, model_names=tuple(CASES)) -> list[str]:
    """Record `model_names` now and compare with the golden file at `path`: the failing entries."""
    tensors, scalars = record(model_names)
    before = {name: value for name, value in load_file(str(path)).items() if name.split("/")[0] in model_names}
    before_scalars = {key: value for key, value in json.loads(path.with_suffix(".json").read_text()).items()
                      if key.split("/")[0] in model_names}
    failures = sorted(set(before) ^ set(tensors))
    print(f"{'entry':<58}{'max diff':>12}  ok   (pixels: uint8 levels; others: relative to the entry's max)")
    for name in sorted(before.keys() & tensors.keys()):
        worst, ok = difference(name, before[name], tensors[name])
        print(f"{name:<58}{worst:>12.3g}  {'yes' if ok else 'NO'}")
        if not ok and not name.split("/")[1] == "direct":  # Direct Inversion's reconstruction is now sampled
            failures.append(name)
    for key in sorted(before_scalars):
        now = scalars.get(key)
        if key.split("/")[1] == "edit" and now != before_scalars[key]:
            failures.append(f"{key}: {before_scalars[key]} -> {now}")
        elif key.split("/")[1] != "edit":
            changes = {metric: (value, now.get(metric)) for metric, value in before_scalars[key].items()
                       if now is None or not abs(value - now.get(metric, float("nan"))) <= 1e-4 * abs(value) + 1e-12}
            if changes:
                print(f"{key}: metrics changed {changes}")
                if key.split("/")[1] != "direct":  # only Direct Inversion's metrics may change: they become measured
                    failures.append(key)
    print("golden comparison:", "passed" if not failures else "FAILED: " + ", ".join(failures))
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("write", "compare"))
    parser.add_argument("path", type=Path)
    parser.add_argument("--models", default=",".join(CASES),
                        help=f"comma-separated subset of {','.join(CASES)} (default: all)")
    args = parser.parse_args()
    model_names = tuple(name.strip() for name in args.models.split(",") if name.strip())
    if not model_names or set(model_names) - set(CASES):
        parser.error(f"--models: choose from {', '.join(CASES)}; got {args.models!r}")
    if args.action == "compare":
        return 1 if compare(args.path, model_names) else 0
    tensors, scalars = record(model_names)
    args.path.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: value.contiguous() for name, value in tensors.items()}, str(args.path))
    args.path.with_suffix(".json").write_text(json.dumps(scalars, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(tensors)} tensors -> {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
