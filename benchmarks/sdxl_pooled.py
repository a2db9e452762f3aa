"""Should SDXL's null-text inversion also optimise the pooled unconditional embedding?

SDXL's UNet reads the text twice: the 77 token rows through cross-attention, and the second
encoder's pooled vector through the added (time) embedding, which shifts every ResNet block. The
embedding tensor carries both (p2p_real/text_encoders.py), so null-text optimises both unless the
pooled row is held fixed. This runs null-text both ways on the same photos and DDIM trajectories and
reports how well guided sampling follows the pivots: the final inner loss per timestep, and the
reconstruction's latent error, with plain DDIM + CFG as the control.

    python benchmarks/sdxl_pooled.py --model tiny-sdxl-random --steps 10          # CPU, seconds
    python benchmarks/sdxl_pooled.py --model sdxl-random --steps 50 --timesteps 10 # GPU
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from sdxl_speed import first_timesteps  # a script beside this one

from p2p_real.images import load_image, to_tensor
from p2p_real.inversion.ddim import ddim_invert
from p2p_real.inversion.methods import METHODS, reconstruct
from p2p_real.inversion.null_text import null_text_optimize
from p2p_real.inversion.options import NullTextOptions
from p2p_real.loading import load_model

PHOTOS = Path(__file__).parent.parent / "data" / "photos"


def pooled_fixed(denoise):
    """`denoise` with the pooled row cut from the gradient: Adam then never moves it (zero moments)."""
    def wrapped(latents, timestep, embeddings):
        return denoise(latents, timestep, torch.cat([embeddings[:, :-1], embeddings[:, -1:].detach()], dim=1))
    return wrapped


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny-sdxl-random")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--timesteps", type=int, default=None, help="optimise only the first K timesteps (GPU time)")
    parser.add_argument("--photos", type=int, default=4)
    args = parser.parse_args()
    model = load_model(args.model)
    captions = json.loads((PHOTOS / "captions.json").read_text())
    names = sorted(captions)[: args.photos]
    pixels = to_tensor([load_image(PHOTOS / name, model.resolution) for name in names]).to(model.device)
    latents = model.encode(pixels)
    conditional = model.embed([captions[name] for name in names])
    unconditional = model.empty_prompt(len(names))
    schedule = model.schedule(args.steps)
    trajectory = ddim_invert(model.denoise, latents, conditional, schedule)
    if args.timesteps:  # the first K timesteps of the full schedule: compare the pivots reached
        schedule, trajectory = first_timesteps(schedule, trajectory, args.timesteps)
    options = NullTextOptions(early_stop_epsilon=-1.0, early_stop_slope=0.0)  # every timestep does all 10 steps
    report = {"model": args.model, "device": str(model.device), "dtype": str(model.dtype), "steps": args.steps,
              "timesteps": args.timesteps or args.steps, "photos": names}
    plain = METHODS["ddim"](model.denoise, trajectory, conditional, unconditional, schedule, 7.5, options)
    target = trajectory[0]
    plain_error = (reconstruct(model.denoise, trajectory[-1], conditional, plain, schedule, 7.5)
                   - target).pow(2).flatten(1).mean(1)
    report["ddim_cfg_latent_mse"] = plain_error.tolist()
    for label, denoise in (("pooled optimised", model.denoise), ("pooled fixed", pooled_fixed(model.denoise))):
        result = null_text_optimize(denoise, trajectory, conditional, unconditional, schedule, 7.5, options)
        error = (result.reconstruction_latents - target).pow(2).flatten(1).mean(1)
        moved = (result.null_text_embeddings[:, :, -1] - unconditional[None, :, -1]).abs().amax().item()
        report[label] = {"latent_mse": error.tolist(), "mean_final_loss": result.final_losses.mean(1).tolist(),
                         "pooled_row_moved_by": moved}
        print(f"{label:<17} latent MSE {error.mean():.4g} (DDIM+CFG {plain_error.mean():.4g}); "
              f"mean final loss {result.final_losses.mean():.4g}; pooled row moved by up to {moved:.3g}", flush=True)
    ratio = torch.tensor(report["pooled optimised"]["latent_mse"]) / torch.tensor(report["pooled fixed"]["latent_mse"])
    report["optimised_over_fixed_latent_mse"] = ratio.tolist()
    print(f"latent MSE, optimised / fixed, per photo: {', '.join(f'{r:.3f}' for r in ratio.tolist())}")
    out = Path(os.environ.get("OUT", "."))
    (out / f"sdxl_pooled_{args.model}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
