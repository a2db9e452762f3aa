"""Names and defaults that users see, importable without torch so that `--help` is instant."""

DEFAULT_MODEL = "CompVis/stable-diffusion-v1-4"  # the model both papers use
BUILTIN_MODELS = ("shapes", "tiny-random", "tiny-sdxl-random", "sd-v1-random", "sdxl-random",
                  "tiny-sd3-random", "sd3-random")
DTYPE_NAMES = ("float32", "float16", "bfloat16")
# "auto": float16 on a GPU, float32 elsewhere. On a GPU float16 is about 5x faster than float32 and
# reconstructs as well (docs/BENCHMARKS.md, runs 5-6); bfloat16 is as fast but measurably worse.
DTYPE_CHOICES = ("auto", *DTYPE_NAMES)
INVERSION_METHODS = ("null-text", "ddim", "negative-prompt", "direct")
NETWORK_METRICS = ("lpips", "clip", "structure")  # the benchmarks' metrics beside PSNR, SSIM and MSE
DEFAULT_STEPS = 50  # DDIM steps, as both papers
DEFAULT_GUIDANCE = 7.5  # classifier-free guidance scale, as both papers and PIE-Bench
# SD3 / SD3.5's own defaults (diffusers' StableDiffusion3Pipeline): its family's, when none is given
SD3_STEPS = 28
SD3_GUIDANCE = 7.0
# Beyond this, guidance only overflows: SD's useful scales are 1 to 20; 0 (no text at all) edits nothing.
MAX_GUIDANCE = 100.0
DEFAULT_METHOD = "null-text"  # the inversion method, Mokady et al. 2023
# The CLI's step defaults for the small built-ins, so that a run on a CPU takes seconds: tiny-random
# is a smoke model; shapes gives up 0.8 dB of null-text PSNR at 10 steps against 20 (data/shapes).
SMALL_MODEL_STEPS = {"tiny-random": 10, "tiny-sdxl-random": 10, "tiny-sd3-random": 10, "shapes": 10}
