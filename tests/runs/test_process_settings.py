"""What the commands set for their own process: CUDA's allocator mode and torch.compile's cache
folder, each only where the user has not set it."""
import os


def test_the_commands_let_cudas_allocator_grow_segments_unless_the_user_chose(monkeypatch):
    from p2p_real.runs.requests import ModelChoice

    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    ModelChoice("tiny-random", device="cpu").load()
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128")
    ModelChoice("tiny-random", device="cpu").load()
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"


def test_compiled_kernels_are_kept_in_a_cache_folder_that_outlives_the_run(tmp_path):
    # In a fresh interpreter, as a user runs it: importing torch sets TORCHINDUCTOR_CACHE_DIR to a
    # folder under /tmp, so the command must choose its folder before torch is imported.
    import subprocess
    import sys

    script = ("import os, sys; from p2p_real.cli import main; "
              "main(['invert', 'data/photos/chelsea.jpg', '--prompt', 'a cat', '--output', sys.argv[1], "
              "'--model', 'tiny-random', '--device', 'cpu', '--compile']); "
              "print(os.environ['TORCHINDUCTOR_CACHE_DIR'])")
    environment = {key: value for key, value in os.environ.items() if key != "TORCHINDUCTOR_CACHE_DIR"}
    choices = ((None, tmp_path / "p2p-real" / "torch-compile"), (str(tmp_path / "mine"), tmp_path / "mine"))
    for user_choice, expected in choices:
        if user_choice:
            environment["TORCHINDUCTOR_CACHE_DIR"] = user_choice
        finished = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out")], capture_output=True, text=True,
                                  env={**environment, "XDG_CACHE_HOME": str(tmp_path)})
        # refused on the CPU, after the folder was chosen
        assert "compiling the UNet needs a CUDA device" in finished.stderr
        assert finished.stdout.strip().splitlines()[-1] == str(expected)


def test_a_compiled_run_leaves_a_marker_that_only_the_same_model_setup_finds(monkeypatch, tmp_path):
    import torch

    from p2p_real.random_models import tiny_random
    from p2p_real.runs.compile_cache import is_warm, mark_warm, warm_marker

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model = tiny_random(seed=0)
    assert not is_warm(model)
    mark_warm(model)
    assert is_warm(model) and warm_marker(model).parent == tmp_path / "p2p-real" / "torch-compile" / "warm"
    assert not is_warm(tiny_random(seed=1))  # other weights
    assert not is_warm(tiny_random(seed=0).to(dtype=torch.float64))  # another precision


def test_a_warm_cache_never_compiles_off_the_gpu(monkeypatch, tmp_path):
    from p2p_real.runs.compile_cache import mark_warm
    from p2p_real.runs.requests import ModelChoice

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    mark_warm(ModelChoice("tiny-random", device="cpu").load())
    assert not ModelChoice("tiny-random", device="cpu").load(photos=10).runner.compiled
