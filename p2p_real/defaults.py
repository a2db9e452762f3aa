"""Names and defaults that users see, importable without torch so that `--help` is instant."""

DEFAULT_MODEL = "CompVis/stable-diffusion-v1-4"  # the model both papers use
BUILTIN_MODELS = ("tiny-random", "sd-v1-random")
DTYPE_NAMES = ("float32", "float16", "bfloat16")
INVERSION_METHODS = ("null-text", "ddim", "negative-prompt", "direct")
DEFAULT_STEPS = 50  # DDIM steps, as both papers
SMOKE_MODEL_STEPS = 10  # the CLI's default for --model tiny-random, so that a smoke run takes seconds
