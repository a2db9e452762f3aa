"""Draw docs/speed.png from a gpu_speed.json run (the numbers in docs/BENCHMARKS.md).

    python benchmarks/plot_speed.py docs/results/gpu_speed_fp16_full.json docs/speed.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

report = json.load(open(sys.argv[1]))
rows = [row for row in report["rows"] if "@" in row["what"] or row["what"].startswith("baseline")]
labels = [row["what"].replace("project, ", "").replace("baseline: paper's algorithm, fp32, batch 1",
                                                       "baseline (paper, fp32 @1)")
          for row in rows]
seconds = [row["seconds_per_photo"] for row in rows]
figure, axes = plt.subplots(figsize=(7, 3.2), dpi=120)
bars = axes.barh(labels[::-1], seconds[::-1], color=["#888"] * (len(rows) - 1) + ["#444"])
for bar, value in zip(bars, seconds[::-1]):
    axes.text(bar.get_width() + 0.5, bar.get_y() + bar.get_height() / 2, f"{value:.1f} s  ({seconds[0] / value:.1f}x)",
              va="center", fontsize=8)
axes.set_xlabel(f"seconds per photo, null-text inversion, 50 x 10 steps ({report['device']})", fontsize=8)
axes.set_xlim(0, max(seconds) * 1.35)
axes.set_title("Full-size SD v1 (random weights), 512x512; @N = photos per batch", fontsize=9)
figure.tight_layout()
figure.savefig(sys.argv[2])
