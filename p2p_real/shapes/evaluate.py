"""Issue 6's measurements of a shapes model, on held-out scenes: does generation follow the text, how
closely do DDIM and null-text inversion reconstruct, and do Prompt-to-Prompt edits do what their words
say (colour swap, shape swap, re-weighting, LocalBlend)?

Scenes come from seed 1000 (training draws seed 0), so the model has seen none of them. Every score is
read from pixels, by `check.py` or with `eval.metrics`' PSNR and SSIM, so the evaluation needs no
learned metric (LPIPS, CLIP) and runs offline.

    python -m p2p_real.shapes.evaluate --model p2p_real/assets/shapes --output docs/results/shapes

writes OUTPUT/shapes_eval.json (settings, device, seconds per part, means and one row per scene) and
PNG figures of a few examples, and prints a short table.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from ..defaults import DTYPE_NAMES
from ..editing.edit import EditResult, edit
from ..editing.options import EditOptions
from ..errors import P2PError
from ..eval.metrics import background, psnr, reconstruction_metrics
from ..images import grid, to_pil, to_tensor, to_uint8, write_json_atomic
from ..pipeline import invert
from ..inversion.options import NullTextOptions
from ..models import Model
from ..sampling import ddim_sample
from .check import far_from_background, parse_caption, read_object
from .scenes import COLOURS, SHAPES, Scene, render_scene, scene_at

HELD_OUT_SEED = 1000  # training uses seed 0
GUIDANCE = 7.5
PARTS = ("text", "reconstruct", "p2p")
METHODS = ("ddim", "null-text")
REWEIGHT_FACTORS = (-2.0, -1.0, 0.0, 1.0, 2.0)  # the paper's range, c in [-2, 2]
# The P2P notebook's re-weighting settings: cross-attention edited for 80% of the steps, self-attention
# kept for 40%. With PIE-Bench's 0.4 / 0.6 (the edit defaults) the layout is fixed before the scaled
# attention can act, and on this model the object's area moved by under 1% (measured).
REWEIGHT_OPTIONS = {"cross_replace_steps": 0.8, "self_replace_steps": 0.4}
REWEIGHT_WORDS = ("colour", "size")  # caption words whose attention is scaled
MIN_SWAP_DISTANCE = 150.0  # RGB distance of a swap's colour from the object's and the background's
PSNR_CAP = 100.0  # dB for identical images: uint8 pictures that differ at all stay below ~90 dB
EXAMPLES = 4  # scenes shown in each figure
NULL_TEXT = NullTextOptions()  # the paper's settings


@dataclass
class Part:
    """One part's means (`summary`), one row per scene (`rows`) and figures to save as PNGs."""

    summary: dict
    rows: list[dict]
    figures: dict[str, Image.Image] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"summary": self.summary, "scenes": self.rows}


# ---- 1. text following ---------------------------------------------------------------------------


def text_following(model: Model, count: int, seed: int = HELD_OUT_SEED, steps: int = 50, guidance: float = GUIDANCE,
                   batch_size: int = 32, progress: bool = False) -> Part:
    """Sample held-out one-object captions from seeded noise and read colour and shape back."""
    captions = [scene.caption for scene in held_out(model, count, seed, max_objects=1)]
    side = model.unet.config.sample_size
    # All noise drawn at once, so a picture does not depend on the batch size.
    noise = torch.randn(count, model.unet.config.in_channels, side, side, generator=torch.Generator().manual_seed(seed))
    schedule = model.schedule(steps)
    rows, pictures = [], []
    for start in tqdm(range(0, count, batch_size), desc="text following", disable=not progress):
        batch = captions[start : start + batch_size]
        unconditional = model.embed([""] * len(batch))[None].expand(steps, -1, -1, -1)
        latents = ddim_sample(model.denoise, noise[start : start + len(batch)].to(model.device), schedule,
                              model.embed(batch), unconditional, guidance)
        for offset, image in enumerate(to_uint8(model.decode(latents))):
            words = parse_caption(batch[offset])
            reading = read_object(Image.fromarray(image.numpy()), words["background_colour"])
            row = {"index": start + offset, "caption": batch[offset], "read_colour": reading.colour,
                   "read_shape": reading.shape, "colour": reading.colour == words["colour"], "shape": reading.shape == words["shape"]}
            row["both"] = row["colour"] and row["shape"]
            rows.append(row)
            if len(pictures) < 2 * EXAMPLES:
                wanted = f"{words['colour']} {words['shape']}"
                pictures.append((image, wanted if row["both"] else f"{wanted} / {reading.colour} {reading.shape}"))
    summary = {"count": count, **means(rows, ("colour", "shape", "both"))}
    rows_of_four = [pictures[index : index + 4] for index in range(0, len(pictures), 4)]
    return Part(summary, rows, {"text_following": figure(rows_of_four)})


# ---- 2. reconstruction ---------------------------------------------------------------------------


def reconstruction(model: Model, count: int, seed: int = HELD_OUT_SEED, steps: int = 50, guidance: float = GUIDANCE,
                   options: NullTextOptions = NULL_TEXT, batch_size: int = 25, progress: bool = False) -> Part:
    """PSNR/SSIM of DDIM and null-text reconstructions of held-out scenes (1-3 objects), and of the
    VAE alone (decode(encode(x))): the ceiling of an inversion that retraces the encoded latent exactly."""
    scenes = held_out(model, count, seed, max_objects=3)
    rows, pictures = [], []
    for start in tqdm(range(0, count, batch_size), desc="reconstruction", disable=not progress):
        batch = scenes[start : start + batch_size]
        images, captions = [scene.image for scene in batch], [scene.caption for scene in batch]
        pixels = to_tensor(images).to(model.device)
        vae = model.decode(model.encode(pixels)).cpu()
        vae_scores = reconstruction_metrics(vae, pixels.cpu())
        # invert() reconstructs as editing will: guided sampling (at `guidance`) from the inverted
        # noise with the method's null embeddings, the plain empty prompt's for DDIM.
        inverted = {method: invert(model, images, captions, method, steps, guidance, options) for method in METHODS}
        for offset, scene in enumerate(batch):
            row = {"index": start + offset, "caption": scene.caption, "objects": len(scene.objects),
                   "vae": pick(vae_scores[offset], ("psnr", "ssim"))}
            row.update({method: pick(inverted[method][offset].metrics, ("psnr", "ssim")) for method in METHODS})
            rows.append(row)
            if len(pictures) < EXAMPLES:
                pictures.append([(inverted["ddim"][offset].image, "source"), (to_uint8(vae[offset : offset + 1])[0], label("VAE", row["vae"]))]
                                + [(inverted[method][offset].reconstruction, label(method, row[method])) for method in METHODS])
    summary = {"count": count, **{name: means([row[name] for row in rows], ("psnr", "ssim")) for name in ("vae", *METHODS)}}
    summary["null_text_better"] = means([{"better": row["null-text"]["psnr"] > row["ddim"]["psnr"]} for row in rows], ("better",))["better"]
    return Part(summary, rows, {"reconstruction": figure(pictures)})


def label(name: str, scores: dict) -> str:
    return f"{name} {scores['psnr']:.1f} dB"


# ---- 3. Prompt-to-Prompt checks ------------------------------------------------------------------


def p2p_checks(model: Model, count: int, seed: int = HELD_OUT_SEED, steps: int = 50, guidance: float = GUIDANCE,
               options: NullTextOptions = NULL_TEXT, factors: tuple[float, ...] = REWEIGHT_FACTORS,
               batch_size: int = 25, progress: bool = False) -> Part:
    """Edit null-text inversions of held-out one-object scenes and read the edits back: colour swap
    (with and without LocalBlend), shape swap, and re-weighting of the colour and size words."""
    scenes = held_out(model, count, seed, max_objects=1)
    inversions = []
    for start in tqdm(range(0, count, batch_size), desc="null-text inversion", disable=not progress):
        batch = scenes[start : start + batch_size]
        inversions += invert(model, [scene.image for scene in batch], [scene.caption for scene in batch],
                             "null-text", steps, guidance, options)
    rows, edits, sweeps = [], [], []
    for index, (scene, inversion) in enumerate(tqdm(list(zip(scenes, inversions)), desc="P2P edits", disable=not progress)):
        row, pictures, sweep = p2p_scene(model, scene, inversion, index, factors)
        rows.append(row)
        if index < EXAMPLES:
            edits.append(pictures)
        if index < EXAMPLES // 2:  # two rows (colour and size word) a scene
            sweeps += sweep
    summary = {
        "count": count,
        "reconstruction": means([row["reconstruction"] for row in rows], ("colour", "shape", "background_psnr_source")),
        **{check: means([row[check] for row in rows], keys) for check, keys in SUMMARY_KEYS.items()},
        "reweight": {"factors": list(factors), **{word: reweight_summary([row["reweight"][word] for row in rows])
                                                  for word in REWEIGHT_WORDS}},
    }
    summary["local_blend"]["at_least_plain"] = means(
        [{"value": row["local_blend"]["background_psnr_reconstruction"] >= row["colour_swap"]["background_psnr_reconstruction"]}
         for row in rows], ("value",))["value"]
    return Part(summary, rows, {"p2p": figure(edits), "reweight": figure(sweeps)})


EDIT_KEYS = ("success", "background_psnr_reconstruction", "background_psnr_source")
SUMMARY_KEYS = {
    "colour_swap": (*EDIT_KEYS, "moved_to_target", "to_target", "to_source"),
    "local_blend": (*EDIT_KEYS, "moved_to_target", "to_target", "to_source", "mask_fraction"),
    "shape_swap": (*EDIT_KEYS, "colour_kept", "centroid_shift"),
}


def p2p_scene(model: Model, scene: Scene, inversion, index: int, factors) -> tuple[dict, list, list]:
    """All edits of one scene: its row, a figure row of the swaps, and figure rows of the sweeps."""
    item, words = scene.objects[0], parse_caption(scene.caption)
    source_mask, bg = scene.masks[0], scene.background_colour
    region = dilate(source_mask)
    reconstructed = read_object(to_pil(inversion.reconstruction), bg)
    row = {"index": index, "caption": scene.caption, "reconstruction": {
        "colour": reconstructed.colour == item.colour, "shape": reconstructed.shape == item.shape,
        "background_psnr_source": background_psnr(inversion.reconstruction, inversion.image, region)}}

    colour = swap_colour(item.colour, bg, index)
    target = with_word(scene.caption, 2, colour)
    plain = edit(model, inversion, target)
    # LocalBlend on the object's noun, as P2P's examples blend on the object ("cat", "bicycle"): this
    # model's colour words attend over the whole picture (their maps' floor sits at about 0.35 of
    # the peak, above the 0.3 threshold), its shape words on the object.
    blended = edit(model, inversion, target, EditOptions(blend_words=(item.shape, item.shape)))
    row["colour_swap"] = colour_scores(plain, scene, colour, region)
    row["local_blend"] = colour_scores(blended, scene, colour, region)
    row["local_blend"]["mask_fraction"] = None if blended.mask is None else float(blended.mask.float().mean())

    shape = [other for other in SHAPES if other != item.shape][index % (len(SHAPES) - 1)]  # each other shape in turn
    swapped = edit(model, inversion, with_word(scene.caption, 3, shape))
    row["shape_swap"] = shape_scores(swapped, scene, shape)

    reweights = [{words[word]: factor} for word in REWEIGHT_WORDS for factor in factors]
    _, pictures = reweight_sweep(model, inversion, reweights)
    row["reweight"], sweep = {}, []
    for position, word in enumerate(REWEIGHT_WORDS):
        chunk = pictures[position * len(factors) : (position + 1) * len(factors)]
        row["reweight"][word] = reweight_scores(chunk, bg, words[word], factors)
        sweep.append([(picture, f"{words[word]} x{factor:g}") for picture, factor in zip(chunk, factors)])
    figure_row = [(inversion.image, "source"), (plain.reconstruction, "null-text"), (plain.edited, f"-> {colour}"),
                  (blended.edited, f"-> {colour} + blend"), (swapped.edited, f"-> {shape}")]
    return row, figure_row, sweep


def swap_colour(source: str, background_colour: str, choice: int) -> str:
    """A colour at least MIN_SWAP_DISTANCE from the object's and the background's, so that the read
    colour tells the swap apart from both; `choice` rotates among those (three or more always)."""
    far = [name for name in COLOURS if name not in (source, background_colour)
           and min(rgb_distance(COLOURS[name], COLOURS[source]), rgb_distance(COLOURS[name], COLOURS[background_colour])) >= MIN_SWAP_DISTANCE]
    return far[choice % len(far)]


def colour_scores(result: EditResult, scene: Scene, colour: str, region: np.ndarray) -> dict:
    """Did the object turn `colour`: the reader's verdict, and the median colour inside the source
    object's mask against the target's and the source's named colours; and was the rest kept."""
    edited = result.edited.numpy()
    inside = np.median(edited[scene.masks[0]].astype(np.float64), axis=0)
    to_target = rgb_distance(inside, COLOURS[colour])
    to_source = rgb_distance(inside, COLOURS[scene.objects[0].colour])
    read = read_object(Image.fromarray(edited), scene.background_colour).colour
    return {"target": colour, "read_colour": read, "success": read == colour, "to_target": to_target,
            "to_source": to_source, "moved_to_target": to_target < to_source, **background_scores(result, region)}


def shape_scores(result: EditResult, scene: Scene, shape: str) -> dict:
    """Did the object become `shape` where it was: the reader's verdict, its colour, and how far the
    edited object's centroid moved. The background excludes the source object and the target
    shape drawn in its place."""
    item = scene.objects[0]
    template = render_scene([replace(item, shape=shape)], "plain", scene.background_colour, size=scene.masks.shape[1]).masks[0]
    reading = read_object(to_pil(result.edited), scene.background_colour)
    shift = None
    if reading.colour != "none":
        shift = float(np.linalg.norm(np.subtract(centroid(reading.mask), centroid(scene.masks[0]))))
    return {"target": shape, "read_shape": reading.shape, "success": reading.shape == shape,
            "colour_kept": reading.colour == item.colour, "centroid_shift": shift,
            **background_scores(result, dilate(scene.masks[0] | template))}


def background_scores(result: EditResult, region: np.ndarray) -> dict:
    return {"background_psnr_reconstruction": background_psnr(result.edited, result.reconstruction, region),
            "background_psnr_source": background_psnr(result.edited, result.source, region)}


def reweight_sweep(model: Model, inversion, reweights: list[dict[str, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The source branch and one picture per re-weighting of the caption, from one sampling pass."""
    prompt = inversion.prompt
    options = [EditOptions(kind="reweight", reweights=weights, **REWEIGHT_OPTIONS) for weights in reweights]
    results = edit(model, inversion, [prompt] * len(reweights), options)
    return results[0].reconstruction, torch.stack([result.edited for result in results])


def reweight_scores(pictures: torch.Tensor, background_colour: str, word: str, factors) -> dict:
    """Object area (pixels far from the background's colours) and mean HSV saturation per factor,
    and whether each rises (or falls) with the factor, ties allowed."""
    areas, saturations = [], []
    for picture in pictures:
        mask = far_from_background(picture.numpy().astype(np.float64), background_colour)
        saturation = np.asarray(to_pil(picture).convert("HSV"), dtype=np.float64)[..., 1] / 255
        areas.append(int(mask.sum()))
        saturations.append(float(saturation[mask].mean()) if mask.any() else 0.0)
    row = {"word": word, "factors": list(factors), "area": areas, "saturation": saturations}
    for name, values in (("area", areas), ("saturation", saturations)):
        steps = np.diff(values)
        row[f"{name}_up"], row[f"{name}_down"] = bool((steps >= 0).all()), bool((steps <= 0).all())
        # monotone and not flat: a sweep that changes nothing is not a monotone change
        row[f"{name}_monotone"] = (row[f"{name}_up"] or row[f"{name}_down"]) and values[-1] != values[0]
    row["area_change"] = (areas[-1] - areas[0]) / max(areas[len(areas) // 2], 1)  # from the lowest factor to the highest
    return row


def reweight_summary(rows: list[dict]) -> dict:
    return {
        "mean_area": np.mean([row["area"] for row in rows], axis=0).tolist(),
        "mean_saturation": np.mean([row["saturation"] for row in rows], axis=0).tolist(),
        **means(rows, ("area_up", "area_down", "saturation_up", "saturation_down", "area_monotone", "saturation_monotone")),
        "area_or_saturation_monotone": float(np.mean([row["area_monotone"] or row["saturation_monotone"] for row in rows])),
        "mean_abs_area_change": float(np.mean([abs(row["area_change"]) for row in rows])),
    }


# ---- small helpers -------------------------------------------------------------------------------


def held_out(model: Model, count: int, seed: int, max_objects: int) -> list[Scene]:
    return [scene_at(seed, index, model.resolution, max_objects) for index in range(count)]


def with_word(caption: str, position: int, word: str) -> str:
    words = caption.split(" ")
    words[position] = word
    return " ".join(words)


def rgb_distance(a, b) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=np.float64)))


def centroid(mask: np.ndarray) -> tuple[float, float]:
    rows, columns = np.nonzero(mask)
    return float(columns.mean()), float(rows.mean())


def dilate(mask: np.ndarray) -> np.ndarray:
    """Grow a mask by 1/32 of the side (2 pixels at 64), so anti-aliased edges count as the object."""
    radius = max(1, round(mask.shape[0] / 32))
    grown = F.max_pool2d(torch.tensor(mask, dtype=torch.float32)[None, None], 2 * radius + 1, stride=1, padding=radius)
    return grown[0, 0].bool().numpy()


def background_psnr(image: torch.Tensor, reference: torch.Tensor, region: np.ndarray) -> float:
    """PSNR outside `region`, PIE-Bench's way (`eval.metrics.background`: both images blacked out
    inside it, whole-image PSNR), of (H, W, 3) uint8 pictures; identical ones score PSNR_CAP."""
    mask = torch.tensor(region, dtype=torch.float32)[None, None]
    value = psnr(background(as_batch(image), mask), background(as_batch(reference), mask))
    return min(float(value[0]), PSNR_CAP)


def as_batch(picture: torch.Tensor) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1], the metrics' convention."""
    return picture.permute(2, 0, 1)[None].float() / 255


def pick(scores: dict, keys) -> dict:
    return {key: float(scores[key]) for key in keys}


def means(rows: list[dict], keys) -> dict:
    """Mean of each key over the rows that have a finite value (booleans give rates); None if none."""
    result = {}
    for key in keys:
        values = [float(row[key]) for row in rows if row.get(key) is not None and math.isfinite(float(row[key]))]
        result[key] = sum(values) / len(values) if values else None
    return result


def figure(rows: list[list[tuple[torch.Tensor, str]]]) -> Image.Image:
    """Rows of labelled (H, W, 3) uint8 pictures, enlarged without smoothing to ~192 pixels each."""
    side = rows[0][0][0].shape[0]
    scale = max(1, 192 // side)
    strips = [grid([to_pil(picture).resize((side * scale,) * 2, Image.Resampling.NEAREST) for picture, _ in row],
                   [text for _, text in row]) for row in rows]
    canvas = Image.new("RGB", (max(strip.width for strip in strips), sum(strip.height for strip in strips)), "white")
    for number, strip in enumerate(strips):
        canvas.paste(strip, (0, sum(other.height for other in strips[:number])))
    return canvas


def plain(value):
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---- command line --------------------------------------------------------------------------------


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
        lines.append(f"{'reconstruction':<18}PSNR " + " / ".join(f"{name} {number(rec[name]['psnr'], 1)}" for name in names)
                     + f" dB  SSIM {' / '.join(number(rec[name]['ssim'], 3) for name in names)}"
                     + f"  ({rec['count']} scenes; null-text > ddim in {number(rec['null_text_better'])})")
    if "p2p" in results:
        p2p = results["p2p"]["summary"]
        rec = p2p["reconstruction"]
        lines.append(f"{'p2p source rec.':<18}reads colour {number(rec['colour'])} shape {number(rec['shape'])}  "
                     f"bg PSNR vs photo {number(rec['background_psnr_source'], 1)} dB  ({p2p['count']} scenes)")
        for name, title in (("colour_swap", "colour swap"), ("local_blend", "  + LocalBlend"), ("shape_swap", "shape swap")):
            check = p2p[name]
            extra = (f"colour kept {number(check['colour_kept'])}  centroid shift {number(check['centroid_shift'], 1)} px"
                     if name == "shape_swap" else f"moved to target {number(check['moved_to_target'])}")
            lines.append(f"{title:<18}target read {number(check['success'])}  {extra}  bg PSNR vs rec "
                         f"{number(check['background_psnr_reconstruction'], 1)} / photo {number(check['background_psnr_source'], 1)} dB")
        lines.append(f"{'':<18}LocalBlend bg PSNR >= plain in {number(p2p['local_blend']['at_least_plain'])}")
        for word in REWEIGHT_WORDS:
            sweep = p2p["reweight"][word]
            factors = " ".join(f"{factor:g}" for factor in p2p["reweight"]["factors"])
            lines.append(f"{'reweight ' + word:<18}x({factors}): area {' '.join(f'{v:.0f}' for v in sweep['mean_area'])}  "
                         f"saturation {' '.join(f'{v:.2f}' for v in sweep['mean_saturation'])}  monotone: area "
                         f"{number(sweep['area_monotone'])} saturation {number(sweep['saturation_monotone'])} either "
                         f"{number(sweep['area_or_saturation_monotone'])}  |area change| {number(sweep['mean_abs_area_change'])}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m p2p_real.shapes.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a shapes model folder (or a built-in name such as tiny-random, for smoke runs)")
    parser.add_argument("--output", required=True, type=Path, help="folder for shapes_eval.json and the figures")
    parser.add_argument("--scenes", type=int, default=50, help="held-out scenes (captions) per part (default: 50)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default: 50)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help=f"held-out scene seed (default: {HELD_OUT_SEED}; 0 is the training set)")
    parser.add_argument("--guidance", type=float, default=GUIDANCE, help=f"classifier-free guidance scale (default: {GUIDANCE})")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    parser.add_argument("--batch-size", type=int, default=25, help="pictures sampled or inverted together (default: 25)")
    parser.add_argument("--inner-steps", type=int, default=NullTextOptions.num_inner_steps,
                        help=f"null-text Adam iterations per step at most (default: {NullTextOptions.num_inner_steps})")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--dtype", default="float32", choices=DTYPE_NAMES)
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false", help="run the UNet eagerly on CUDA")
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

    from ..devices import device_name
    from ..loading import load_model

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
        "model": {"path": args.model, "name": model.name, "fingerprint": model.fingerprint, "resolution": model.resolution},
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


def run_parts(model: Model, parts: list[str], args: argparse.Namespace, options: NullTextOptions) -> tuple[dict, dict, list[str]]:
    """Each part's results and seconds, its figures written into args.output; the figures' names."""
    from ..devices import synchronize

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
