"""Draw docs/overview.png, the README's picture of the pipeline, from a photo in data/.

    python benchmarks/plot_overview.py docs/overview.png
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

figure = plt.figure(figsize=(9, 2.6), dpi=120)
photo = figure.add_axes([0.01, 0.12, 0.2, 0.76])
photo.imshow(Image.open("data/photos/chelsea.jpg"))
photo.set_axis_off()
photo.set_title('"a close-up photo of a tabby cat"', fontsize=8)
boxes = [
    (0.27, "p2p-real invert", "DDIM inversion (guidance 1)\nnull-text optimisation\n50 steps x 10 Adam steps"),
    (0.52, "artifact", "x_T latent\n50 null-text embeddings\nsettings, PSNR / SSIM"),
    (0.77, "p2p-real edit", '"... tabby cat" -> "... tabby dog"\nattention replace / refine /\nre-weight, LocalBlend'),
]
for left, title, body in boxes:
    axes = figure.add_axes([left, 0.12, 0.2, 0.76])
    axes.set_axis_off()
    axes.add_patch(plt.Rectangle((0, 0), 1, 1, fill=False, linewidth=1.2, transform=axes.transAxes))
    axes.text(0.5, 0.82, title, ha="center", fontsize=10, weight="bold", transform=axes.transAxes)
    axes.text(0.5, 0.4, body, ha="center", va="center", fontsize=7.5, transform=axes.transAxes)
for x in (0.215, 0.465, 0.715):
    figure.text(x, 0.5, "\u2192", fontsize=22, va="center")
figure.text(0.97, 0.02, "writes edited.png, grid.png, maps.png; p2p-real bench scores them", fontsize=7, ha="right")
figure.savefig(sys.argv[1])
