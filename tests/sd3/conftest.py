import pytest
import torch

from p2p_real.random_sd3 import tiny_sd3_random


@pytest.fixture(scope="session")
def tiny_sd3_model():
    """tiny-sd3-random in float32, built once."""
    return tiny_sd3_random(seed=0)


@pytest.fixture(scope="session")
def tiny_sd3_float64():
    """tiny-sd3-random in float64, for comparisons tighter than float32 allows."""
    return tiny_sd3_random(seed=0).to(dtype=torch.float64)
