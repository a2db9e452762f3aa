import pytest
import torch

from p2p_real.random_models import tiny_random, tiny_sdxl_random


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny random-weight SD-family model (epsilon prediction), built once."""
    return tiny_random(seed=0)


@pytest.fixture(scope="session")
def tiny_v_model():
    """The same architecture with SD 2.x's v-prediction."""
    return tiny_random(seed=1, prediction_type="v_prediction")


@pytest.fixture(scope="session")
def tiny_sdxl_model():
    """The tiny random-weight SDXL-family model: two text encoders, pooled and size conditioning."""
    return tiny_sdxl_random(seed=0)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)
