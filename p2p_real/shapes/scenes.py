"""Seeded scenes of coloured shapes on patterned backgrounds, each with a caption and per-object masks.

Why: photos cannot tell us whether an edit did what it was asked. In these scenes every word of the
caption names something we drew, so a swap ("red" -> "blue", "circle" -> "star") can be checked
pixel by pixel inside the object's mask, and the background metrics have an exact mask to exclude.

Captions use no punctuation, so every word is one space-separated token that an edit can swap:
"a large red circle and a small blue square on a striped green background".

Scene `i` of seed `s` depends only on `(s, i)`, so any scene can be regenerated alone:
`scene_at(s, i)` equals the `i`-th scene of `generate(count, s)`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image

SHAPES = ("circle", "square", "triangle", "star", "diamond", "cross")

# Eight colours far apart in RGB: the closest pair, orange and yellow, differ by 140 levels summed
# over the channels (95 in green alone).
COLOURS = MappingProxyType({
    "red": (220, 30, 30),
    "orange": (255, 130, 0),
    "yellow": (250, 225, 40),
    "green": (30, 160, 50),
    "blue": (30, 80, 220),
    "purple": (130, 40, 180),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
})

# Radius (of the circle the shape fits in) as a fraction of the image side. The gap between the
# ranges keeps every large shape bigger in area than every small one, whatever the two shapes.
SIZES = MappingProxyType({
    "small": (0.09, 0.12),
    "large": (0.20, 0.26),
})

# Background patterns, named by the word the caption uses. Patterns mix the background colour with
# a lighter or darker shade of itself, so the background still reads as its colour name.
BACKGROUNDS = ("plain", "gradient", "striped", "dotted", "checkered", "textured")

# Square, triangle, star, diamond and cross stay near upright: a square turned by 45 degrees would
# be a diamond, and the caption must name what a person sees.
MAX_ROTATION = 25.0
# Placement: two objects' centres are at least this fraction of their radii's sum apart, so no
# object covers much of another (with the size ranges above, no centre is ever covered).
MIN_CENTRE_DISTANCE = 0.8
PLACEMENT_TRIES = 100
PATTERN_SHADE = 0.35  # how far a pattern's second tone moves from the background colour
MIN_RANDOM_SIZE = 16  # below this a small shape is a handful of pixels


@dataclass(frozen=True)
class SceneObject:
    """One shape: `center` (x, y) in pixels, with (0, 0) the image's top-left corner and
    (size, size) its bottom-right one; `radius` in pixels of the circle the shape fits in;
    `rotation` in degrees, counter-clockwise on screen (ignored for circles)."""

    shape: str
    colour: str
    size: str
    center: tuple[float, float]
    radius: float
    rotation: float = 0.0


@dataclass(frozen=True, eq=False)  # eq=False: equality of images and mask arrays is not a bool
class Scene:
    """A rendered scene. `masks[k]` is the visible part of `objects[k]` (later objects occlude
    earlier ones), so masks never overlap. `pattern_seed` fixes the background's pattern: passing
    the scene's fields back to `render_scene` redraws the same image."""

    image: Image.Image
    masks: np.ndarray  # (n_objects, H, W) bool, read-only
    objects: tuple[SceneObject, ...]
    background: str
    background_colour: str
    caption: str
    pattern_seed: int = 0


def caption_for(objects: Sequence[SceneObject], background: str, background_colour: str) -> str:
    """The scene in plain English, with no punctuation, objects in drawing order:
    "a large red circle and a small blue square on a striped green background"."""
    phrases = [f"a {item.size} {item.colour} {item.shape}" for item in objects]
    setting = f"a {background} {background_colour} background"
    return f"{' and '.join(phrases)} on {setting}" if phrases else setting


def render_scene(
    objects: Iterable[SceneObject],
    background: str,
    background_colour: str,
    size: int = 64,
    supersample: int = 4,
    pattern_seed: int = 0,
) -> Scene:
    """Paint the objects in order over the background at `size * supersample` pixels, then average
    each `supersample` x `supersample` block (a box filter): edges are anti-aliased, and a pixel
    belongs to an object's mask when the object covers at least half of it."""
    objects = tuple(objects)
    check_vocabulary(objects, background, background_colour)
    if len(objects) > 255:
        raise ValueError(f"a scene holds at most 255 objects (the mask labels are bytes); got {len(objects)}")
    large_side = size * supersample
    canvas = background_pixels(background, background_colour, large_side, supersample, pattern_seed)
    labels = np.zeros((large_side, large_side), dtype=np.uint8)
    for label, item in enumerate(objects, start=1):
        inside = subpixels_inside(item, large_side, supersample)  # (side, side) bool
        canvas[inside] = COLOURS[item.colour]
        labels[inside] = label
    image = Image.fromarray(block_mean_uint8(canvas, supersample))
    label_map = downsample_labels(labels, len(objects), supersample)
    masks = label_map[None] == np.arange(1, len(objects) + 1)[:, None, None]  # (n, H, W)
    masks.flags.writeable = False
    caption = caption_for(objects, background, background_colour)
    return Scene(image, masks, objects, background, background_colour, caption, pattern_seed)


def random_scene(rng: np.random.Generator, size: int = 64, max_objects: int = 3) -> Scene:
    """A scene of 1 to `max_objects` objects of distinct colours, none the background's colour, so
    each colour word names one thing. An object that finds no free place in `PLACEMENT_TRIES`
    tries is left out (crowded large objects in small images), so a scene may hold fewer."""
    if not 1 <= max_objects < len(COLOURS):
        raise ValueError(f"max_objects must be 1 to {len(COLOURS) - 1} (each object needs its own colour); "
                         f"got {max_objects}")
    if size < MIN_RANDOM_SIZE:
        raise ValueError(f"size must be at least {MIN_RANDOM_SIZE} pixels for the shapes to be recognisable; "
                         f"got {size}")
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    colour_names = tuple(COLOURS)
    background_colour = colour_names[rng.integers(len(colour_names))]
    count = int(rng.integers(1, max_objects + 1))
    object_colours = rng.permutation([name for name in colour_names if name != background_colour])[:count]
    objects: list[SceneObject] = []
    for colour in object_colours:
        shape = SHAPES[rng.integers(len(SHAPES))]
        size_word = tuple(SIZES)[rng.integers(len(SIZES))]
        radius = round(float(rng.uniform(*SIZES[size_word])) * size, 2)
        rotation = 0.0 if shape == "circle" else round(float(rng.uniform(-MAX_ROTATION, MAX_ROTATION)), 1)
        center = free_place(rng, radius, objects, size)
        if center is not None:
            objects.append(SceneObject(shape, str(colour), size_word, center, radius, rotation))
    pattern_seed = int(rng.integers(2**31))
    return render_scene(objects, background, background_colour, size, pattern_seed=pattern_seed)


def free_place(
    rng: np.random.Generator, radius: float, placed: Sequence[SceneObject], size: int
) -> tuple[float, float] | None:
    """A centre keeping the whole shape inside the image and at least `MIN_CENTRE_DISTANCE` times
    the radii's sum from every placed object; None when `PLACEMENT_TRIES` random tries all fail."""
    for _ in range(PLACEMENT_TRIES):
        x, y = (round(float(value), 2) for value in rng.uniform(radius, size - radius, size=2))
        if all(math.hypot(x - other.center[0], y - other.center[1]) >= MIN_CENTRE_DISTANCE * (radius + other.radius)
               for other in placed):
            return (x, y)
    return None


def scene_at(seed: int, index: int, size: int = 64, max_objects: int = 3) -> Scene:
    """Scene `index` of the dataset of `seed`, made from a generator seeded with (seed, index)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative; got seed {seed}, index {index}")
    return random_scene(np.random.default_rng([seed, index]), size, max_objects)


def generate(count: int, seed: int, size: int = 64, max_objects: int = 3) -> Iterator[Scene]:
    """Scenes 0 to count - 1 of the dataset of `seed`; the same arguments give the same scenes."""
    for index in range(count):
        yield scene_at(seed, index, size, max_objects)


def save_dataset(folder: str | os.PathLike, count: int, seed: int, size: int = 64, max_objects: int = 3) -> Path:
    """Write `{i:06d}.png`, `{i:06d}_masks.png` (a palette image: 0 is background, k is object k,
    in the caption's order) and `captions.jsonl`, one record per scene. Returns the jsonl's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for index, scene in enumerate(generate(count, seed, size, max_objects)):
        image_name, masks_name = f"{index:06d}.png", f"{index:06d}_masks.png"
        scene.image.save(folder / image_name)
        label_image(scene.masks).save(folder / masks_name)
        records.append({
            "file": image_name,
            "masks": masks_name,
            "caption": scene.caption,
            "objects": [asdict(item) for item in scene.objects],
            "background": scene.background,
            "background_colour": scene.background_colour,
            "pattern_seed": scene.pattern_seed,
        })
    captions_path = folder / "captions.jsonl"
    partial = captions_path.with_name(captions_path.name + ".partial")
    partial.write_text("".join(json.dumps(record) + "\n" for record in records))
    os.replace(partial, captions_path)
    return captions_path


# --- drawing --------------------------------------------------------------------------------------


def check_vocabulary(objects: Sequence[SceneObject], background: str, background_colour: str) -> None:
    """Raise a ValueError naming the first word outside the vocabulary and the words allowed."""
    allowed = {"shape": SHAPES, "colour": tuple(COLOURS), "size": tuple(SIZES)}
    for item in objects:
        for field, words in allowed.items():
            if getattr(item, field) not in words:
                raise ValueError(f"unknown {field} {getattr(item, field)!r} in {item}; use one of {', '.join(words)}")
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}; use one of {', '.join(BACKGROUNDS)}")
    if background_colour not in COLOURS:
        raise ValueError(f"unknown background colour {background_colour!r}; use one of {', '.join(COLOURS)}")


def unit_outline(shape: str) -> np.ndarray:
    """A polygon's vertices (V, 2), fitting the unit circle, upright; y points down as in images.
    Circles are drawn exactly and have no outline here."""
    if shape == "square":
        angles = np.radians([45, 135, 225, 315])
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if shape == "triangle":  # pointing up
        angles = np.radians([-90, 30, 150])
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if shape == "star":  # five points, the first pointing up
        angles = np.radians(-90 + 36 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    if shape == "diamond":  # taller than wide, so it is never a turned square
        return np.array([[0.0, -1.0], [0.6, 0.0], [0.0, 1.0], [-0.6, 0.0]])
    if shape == "cross":  # a plus sign whose arm ends touch the unit circle
        w = 0.34  # half an arm's width
        a = math.sqrt(1 - w**2)  # an arm's reach, so that its corners lie on the circle
        return np.array([[-w, -a], [w, -a], [w, -w], [a, -w], [a, w], [w, w],
                         [w, a], [-w, a], [-w, w], [-a, w], [-a, -w], [-w, -w]])
    polygons = ", ".join(name for name in SHAPES if name != "circle")
    raise ValueError(f"no polygon for shape {shape!r}; polygons exist for {polygons}")


def subpixels_inside(item: SceneObject, side: int, supersample: int) -> np.ndarray:
    """(side, side) bool: which subpixel centres of the supersampled image the object covers.

    Computed exactly rather than with ImageDraw, whose polygon fill snaps float vertices to whole
    pixels and includes both edges: a bias of half a subpixel that makes a centred circle lopsided.
    """
    if item.shape == "circle":
        vertices = None
        low, high = np.asarray(item.center) - item.radius, np.asarray(item.center) + item.radius
    else:
        angle = math.radians(item.rotation)
        # counter-clockwise on screen, where y points down
        rotation = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
        vertices = unit_outline(item.shape) @ rotation.T * item.radius + np.asarray(item.center)  # (V, 2)
        low, high = vertices.min(axis=0), vertices.max(axis=0)
    # only the subpixels of the shape's bounding box are tested
    left, top = np.clip(np.floor(low * supersample), 0, side).astype(int)
    right, bottom = np.clip(np.ceil(high * supersample) + 1, 0, side).astype(int)
    inside = np.zeros((side, side), dtype=bool)
    # subpixel centres in output-pixel units, where the image spans [0, size]
    x, y = np.meshgrid((np.arange(left, right) + 0.5) / supersample, (np.arange(top, bottom) + 0.5) / supersample)
    if vertices is None:
        inside[top:bottom, left:right] = np.hypot(x - item.center[0], y - item.center[1]) < item.radius
        return inside
    # even-odd rule: a point is inside when a ray to its right crosses the outline an odd number of times
    window = inside[top:bottom, left:right]
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0)):
        spans = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        window ^= spans & (x < crossing_x)
    return inside


def block_sum(values: np.ndarray, supersample: int) -> np.ndarray:
    """(H*s, W*s, ...) -> (H, W, ...): the integer sum of each s x s block."""
    values = values.astype(np.int32)
    rows = sum(values[offset::supersample] for offset in range(supersample))  # (H, W*s, ...)
    return sum(rows[:, offset::supersample] for offset in range(supersample))  # (H, W, ...)


def block_mean_uint8(pixels: np.ndarray, supersample: int) -> np.ndarray:
    """The mean of each s x s block of uint8 pixels (a box filter), rounded half up, in integers
    so that the result is the same on every machine."""
    area = supersample * supersample
    return ((block_sum(pixels, supersample) + area // 2) // area).astype(np.uint8)


def downsample_labels(labels: np.ndarray, count: int, supersample: int) -> np.ndarray:
    """(H*s, W*s) labels -> (H, W): label k where object k covers at least half the pixel, the
    later object winning a tie; 0 (background) elsewhere."""
    label_map = np.zeros((labels.shape[0] // supersample, labels.shape[1] // supersample), dtype=np.uint8)
    for label in range(1, count + 1):
        covered = block_sum(labels == label, supersample)  # (H, W) subpixels of the object
        label_map[2 * covered >= supersample * supersample] = label
    return label_map


def pattern_shade(colour: tuple[int, int, int]) -> np.ndarray:
    """The background pattern's second tone: the colour moved towards black, or white if dark."""
    rgb = np.asarray(colour, dtype=np.float64)
    luminance = rgb @ np.array([0.299, 0.587, 0.114])
    towards = np.zeros(3) if luminance > 100 else np.full(3, 255.0)
    return rgb + PATTERN_SHADE * (towards - rgb)


def background_pixels(background: str, colour_name: str, side: int, supersample: int, pattern_seed: int) -> np.ndarray:
    """(side, side, 3) uint8 pixels of the background at the supersampled resolution."""
    base = np.asarray(COLOURS[colour_name], dtype=np.float64)
    if background == "plain":
        return np.broadcast_to(base.astype(np.uint8), (side, side, 3)).copy()
    rng = np.random.default_rng(pattern_seed)
    scale = side / supersample / 64  # pattern sizes below are in pixels of a 64-pixel image
    # subpixel centres in output-pixel units, so patterns look alike at any supersampling
    coordinates = (np.arange(side) + 0.5) / supersample
    x, y = coordinates[None, :], coordinates[:, None]  # (1, side) and (side, 1): they broadcast
    if background == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        projection = x * np.cos(angle) + y * np.sin(angle)
        mix = (projection - projection.min()) / (projection.max() - projection.min())
    elif background == "striped":
        angle = np.radians(rng.choice([0, 45, 90, 135]))
        period = rng.uniform(6, 12) * scale
        projection = x * np.cos(angle) + y * np.sin(angle) + rng.uniform(0, period)
        mix = np.mod(projection, period) < period / 2
    elif background == "dotted":
        spacing = rng.uniform(8, 12) * scale
        offset_x, offset_y = rng.uniform(0, spacing, size=2)
        from_x = np.mod(x + offset_x, spacing) - spacing / 2
        from_y = np.mod(y + offset_y, spacing) - spacing / 2
        mix = from_x**2 + from_y**2 < (0.22 * spacing) ** 2
    elif background == "checkered":
        cell = rng.uniform(8, 16) * scale
        offset_x, offset_y = rng.uniform(0, cell, size=2)
        mix = np.mod(np.floor((x + offset_x) / cell) + np.floor((y + offset_y) / cell), 2)
    elif background == "textured":
        # smooth blotches plus per-pixel grain, both from the pattern's seed
        blotches = Image.frombytes("F", (8, 8), rng.random((8, 8)).astype(np.float32).tobytes())
        smooth = np.asarray(blotches.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float64)
        grain = rng.random((side // supersample, side // supersample)).repeat(supersample, 0).repeat(supersample, 1)
        mix = np.clip(0.75 * smooth + 0.25 * grain, 0, 1)
    else:
        raise ValueError(f"unknown background {background!r}; use one of {', '.join(BACKGROUNDS)}")
    # the pattern's 256 tones between the colour and its shade, looked up per subpixel
    tones = np.linspace(0, 1, 256)[:, None]  # (256, 1)
    palette = np.floor(base + tones * (pattern_shade(COLOURS[colour_name]) - base) + 0.5).astype(np.uint8)  # (256, 3)
    levels = np.rint(np.broadcast_to(mix, (side, side)) * 255).astype(np.uint8)  # (side, side)
    return palette[levels]


def label_image(masks: np.ndarray) -> Image.Image:
    """Masks (n, H, W) as one palette image: 0 black for background, k for object k."""
    labels = np.zeros(masks.shape[1:], dtype=np.uint8)
    for label, mask in enumerate(masks, start=1):
        labels[mask] = label
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    palette = [0, 0, 0] + [channel for index in range(255) for channel in label_colour(index)]
    image.putpalette(palette)
    return image


def label_colour(index: int) -> tuple[int, int, int]:
    """A bright, distinct colour per label, for looking at mask files."""
    hues = [(255, 80, 80), (80, 200, 80), (80, 120, 255), (255, 200, 0), (200, 80, 255), (0, 210, 210)]
    return hues[index % len(hues)]


# --- command line ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m p2p_real.shapes.scenes",
        description="Write a reproducible dataset of captioned shape scenes with per-object masks.",
    )
    parser.add_argument("--count", type=int, required=True, help="number of scenes")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (scene i depends only on seed and i)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--max-objects", type=int, default=3, help="at most this many objects a scene (default 3)")
    parser.add_argument("--output", type=Path, required=True, help="folder to write images, masks and captions.jsonl")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1; got {args.count}")
    if args.seed < 0:
        parser.error(f"--seed must be non-negative; got {args.seed}")
    try:
        captions_path = save_dataset(args.output, args.count, args.seed, args.size, args.max_objects)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {args.count} scenes ({args.size}x{args.size}, seed {args.seed}) to {args.output}: "
          f"images, label masks and {captions_path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
