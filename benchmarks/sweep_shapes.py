"""`p2p-real sweep` on data/shapes' three edits with the shapes model, on the CPU: the chosen setting of
each against PIE-Bench's 0.4 / 0.6, for docs/SWEEP.md.

    OMP_NUM_THREADS=1 python benchmarks/sweep_shapes.py --output /tmp/sweep_shapes

Each scene runs the command a user would (the photo is inverted first, 10 steps), with a 6 x 6 grid of
cross- and self-replace steps (0, 0.2, ..., 1) and, for the LocalBlend edits, thresholds 0.2 and 0.5
(PIE-Bench's 0.3 comes with its own setting). Besides the sweep's own scores, each chosen edit and
PIE-Bench's are scored outside the object itself (the generator's mask in data/shapes/mapping_file.json,
eval.metrics' background PSNR), which depends on no choice the sweep makes. Writes docs/sweep_shapes.png
(the plot of --plot-scene), docs/results/sweep_shapes.json, and prints the table of docs/SWEEP.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2p_real.cli import main as p2p_real  # noqa: E402
from p2p_real.eval.metrics import background, psnr  # noqa: E402
from p2p_real.eval.pie_bench import decode_mask  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ROOT / "data" / "shapes"
GRID = "0,0.2,0.4,0.6,0.8,1"
THRESHOLDS = "0.2,0.5"  # PIE-Bench's 0.3 comes with its own setting, which every sweep runs


def object_masks() -> dict[str, np.ndarray]:
    """Each photo's edit mask from the generator (mapping_file.json), 1 = the object."""
    entries = json.loads((SHAPES / "mapping_file.json").read_text()).values()
    return {entry["image_path"]: decode_mask(entry["mask"]) for entry in entries}


def outside_object(edited: Path, photo: Path, mask: np.ndarray) -> float:
    """PSNR (dB) of an edit against the photo outside the object (PIE-Bench's background PSNR)."""
    pictures = [torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
                for path in (edited, photo)]
    region = torch.nn.functional.interpolate(torch.from_numpy(mask)[None, None], size=pictures[0].shape[2:],
                                             mode="nearest")
    return float(psnr(background(pictures[0], region), background(pictures[1], region))[0])


def sweep_scene(edit: dict, captions: dict, output: Path) -> dict:
    """Run the sweep of one edits.yaml entry; its record, with the time it took."""
    photo = SHAPES / edit["photo"]
    argv = ["sweep", str(photo), "--prompt", captions[edit["photo"]], "--target", edit["target"], "--model", "shapes",
            "--device", "cpu", "--metrics", "none", "--cross", GRID, "--self", GRID, "--output", str(output), "--quiet"]
    if edit.get("blend"):
        argv += ["--blend", *edit["blend"], "--thresholds", THRESHOLDS]
    started = time.perf_counter()
    code = p2p_real(argv)
    if code != 0:
        raise SystemExit(f"p2p-real {' '.join(argv)} exited {code}")
    record = json.loads((output / "sweep.json").read_text())
    record["wall_seconds"] = round(time.perf_counter() - started, 1)
    return record


def lean(row: dict) -> dict:
    """A row of sweep.json with what the table and the plot use, PSNR to 0.01 dB."""
    keep = ("cross_replace_steps", "self_replace_steps", "blend_threshold", "edit_score", "read_colour", "read_shape",
            "pareto")
    return {**{key: row[key] for key in keep}, "psnr_bg": round(row["psnr_bg"], 2)}


def table(results: list[dict]) -> str:
    """The markdown table of docs/SWEEP.md."""
    lines = ["| scene (edit) | setting | cross / self / threshold | background PSNR, sweep's mask | outside the object "
             "| edit read back | score |",
             "|---|---|---|---|---|---|---|"]
    for result in results:
        for name, row in (("**chosen**", result["chosen"]), ("PIE-Bench", result["pie_bench"])):
            threshold = "-" if row["blend_threshold"] is None else f"{row['blend_threshold']:g}"
            lines.append(f"| {result['scene']} | {name} | "
                         f"{row['cross_replace_steps']:g} / {row['self_replace_steps']:g} / {threshold} | "
                         f"{row['psnr_bg']:.2f} dB | {row['psnr_outside_object']:.2f} dB | "
                         f"{row['read_colour']} {row['read_shape']} | {row['edit_score']:g} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True, help="work folder: one sweep folder per scene")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where sweep_shapes.png and results/ go")
    parser.add_argument("--plot-scene", default="triangle.png",
                        help="the scene whose plot becomes docs/sweep_shapes.png")
    args = parser.parse_args()
    captions = json.loads((SHAPES / "captions.json").read_text())
    masks = object_masks()
    results = []
    for edit in yaml.safe_load((SHAPES / "edits.yaml").read_text())["edits"]:
        folder = args.output / Path(edit["photo"]).stem
        record = sweep_scene(edit, captions, folder)
        photo = folder / Path(edit["photo"]).stem / "source.png"  # the photo as the model saw it
        for row in (record["chosen"], record["pie_bench"]):
            row["psnr_outside_object"] = outside_object(folder / row["image"], photo, masks[edit["photo"]])
        kind = "shape swap" if edit["photo"] == "star.png" else "colour swap + LocalBlend"
        results.append({"scene": f"{edit['photo']} ({kind})", "target": edit["target"], "chosen": record["chosen"],
                        "pie_bench": record["pie_bench"], "rows": [lean(row) for row in record["rows"]],
                        "seconds": record["seconds"], "wall_seconds": record["wall_seconds"],
                        "settings": len(record["rows"]), "passes": record["passes"],
                        "mask_fraction": record["mask_fraction"], "source_prompt": record["source_prompt"]})
        if edit["photo"] == args.plot_scene:
            shutil.copyfile(folder / "plot.png", args.docs / "sweep_shapes.png")
            shutil.copyfile(folder / "plot.json", args.docs / "sweep_shapes.json")
    (args.docs / "results").mkdir(parents=True, exist_ok=True)
    summary = {"command": "OMP_NUM_THREADS=1 python benchmarks/sweep_shapes.py", "grid": GRID, "thresholds": THRESHOLDS,
               "device": "CPU", "scenes": results}
    (args.docs / "results" / "sweep_shapes.json").write_text(json.dumps(summary) + "\n")  # compact: 180 rows
    print(table(results))
    print("seconds per scene (sweep / with inversion and model loading): "
          + ", ".join(f"{r['scene'].split()[0]} {r['seconds']:.0f} / {r['wall_seconds']:.0f}" for r in results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
