"""Draw docs/shapes_training.png: the shapes model's training losses from the run's logs.

    python benchmarks/plot_training.py docs/results/shapes docs/shapes_training.png

Each stage's log has one line every 25 steps: {"step", "loss", "seconds"}; "seconds" restarts at
every resumed call, so the time axis adds the calls up.
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path: Path) -> tuple[list[int], list[float], list[float]]:
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    steps, losses, minutes, offset, last = [], [], [], 0.0, 0.0
    for entry in entries:
        if entry["seconds"] < last:  # a resumed call
            offset += last
        last = entry["seconds"]
        steps.append(entry["step"])
        losses.append(entry["loss"])
        minutes.append((offset + entry["seconds"]) / 60)
    return steps, losses, minutes


def smooth(values: list[float], width: int = 8) -> list[float]:
    return [sum(values[max(0, i - width + 1) : i + 1]) / len(values[max(0, i - width + 1) : i + 1])
            for i in range(len(values))]


folder, output = Path(sys.argv[1]), Path(sys.argv[2])
figure, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=120)
for axis, stage, title in ((axes[0], "vae", "VAE: L1 + MSE + 1e-6 KL, batch 256"),
                           (axes[1], "unet", "UNet + text encoder: epsilon MSE, batch 512")):
    steps, losses, minutes = read(folder / f"log-{stage}.jsonl")
    axis.plot(steps, losses, color="#bbb", linewidth=0.8, label="every 25 steps")
    axis.plot(steps, smooth(losses), color="#333", linewidth=1.2, label="mean of 8")
    axis.set_yscale("log")
    axis.set_xlabel(f"step ({minutes[-1]:.1f} min on the GPU in all)")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7)
axes[0].set_ylabel("training loss")
figure.suptitle("shapes model training (NVIDIA H200, bf16 autocast)", fontsize=10)
figure.tight_layout()
figure.savefig(output)
print(f"-> {output}")
