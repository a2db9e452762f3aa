"""The shapes evaluation's second part: how closely do DDIM and null-text inversion reconstruct
held-out scenes, against the VAE alone (the ceiling of an inversion that retraces the latent)?"""
from __future__ import annotations

from tqdm.auto import tqdm

from ..eval.metrics import reconstruction_metrics
from ..images import to_tensor, to_uint8
from ..inversion.options import NullTextOptions
from ..models import Model
from ..pipeline import invert
from .parts import EXAMPLES, GUIDANCE, HELD_OUT_SEED, NULL_TEXT, Part, figure, held_out, means, pick

METHODS = ("ddim", "null-text")


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
                pictures.append([(inverted["ddim"][offset].image, "source"),
                                 (to_uint8(vae[offset : offset + 1])[0], label("VAE", row["vae"]))]
                                + [(inverted[method][offset].reconstruction, label(method, row[method]))
                                   for method in METHODS])
    summary = {"count": count,
               **{name: means([row[name] for row in rows], ("psnr", "ssim")) for name in ("vae", *METHODS)}}
    better = [{"better": row["null-text"]["psnr"] > row["ddim"]["psnr"]} for row in rows]
    summary["null_text_better"] = means(better, ("better",))["better"]
    return Part(summary, rows, {"reconstruction": figure(pictures)})


def label(name: str, scores: dict) -> str:
    return f"{name} {scores['psnr']:.1f} dB"
