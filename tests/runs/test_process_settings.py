"""What the commands set for their own process: CUDA's allocator mode and torch.compile's cache
folder, each only where the user has not set it."""
import os

import pytest


def test_the_commands_let_cudas_allocator_grow_segments_unless_the_user_chose(monkeypatch):
    from p2p_real.runs.commands import ModelChoice

    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    ModelChoice("tiny-random", device="cpu").load()
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128")
    ModelChoice("tiny-random", device="cpu").load()
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"


def test_compiled_kernels_are_kept_in_a_cache_folder_that_outlives_the_run(monkeypatch, tmp_path):
    from p2p_real.runs.commands import ModelChoice, compile_cache_folder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert compile_cache_folder() == tmp_path / "p2p-real" / "torch-compile"
    with pytest.raises(Exception, match="compil"):  # on the CPU compiling is refused, after the folder is chosen
        ModelChoice("tiny-random", device="cpu", compile=True).load()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "p2p-real" / "torch-compile")
