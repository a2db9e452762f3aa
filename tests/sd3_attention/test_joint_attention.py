"""Our joint-attention processor equals diffusers' JointAttnProcessor2_0 on tiny random SD3
transformers, in float64, through whole forwards (the last block's context_pre_only included)."""
import pytest
import torch
from diffusers.models.attention_processor import JointAttnProcessor2_0
from joint_helpers import random_inputs, run, tiny_transformer

from p2p_real.joint_attention import JointAttention


@pytest.mark.parametrize("dual, qk_norm", [(False, None), (True, "rms_norm")], ids=["sd3", "sd35-dual-qknorm"])
def test_joint_attention_equals_diffusers(dual, qk_norm):
    model = tiny_transformer(seed=3, num_layers=3, dual=dual, qk_norm=qk_norm)
    names = list(model.attn_processors)
    assert any("attn2" in name for name in names) == dual
    assert model.transformer_blocks[-1].attn.context_pre_only
    for seed in (11, 12):
        inputs = random_inputs(batch=3, seed=seed)
        ours = run(model, {name: JointAttention() for name in names}, inputs)
        theirs = run(model, JointAttnProcessor2_0(), inputs)
        assert ours.abs().mean() > 0.1  # a real output, not a vanishing one
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_attend_is_the_one_hook():
    """A subclass that changes `attend` changes the output: the hook is on the path of every block."""
    class Doubled(JointAttention):
        def attend(self, query, key, value, scale, image_tokens):
            return 2 * super().attend(query, key, value, scale, image_tokens)

    model = tiny_transformer(seed=4, dual=True)
    inputs = random_inputs(batch=2, seed=5)
    plain = run(model, JointAttention(), inputs)
    doubled = run(model, Doubled(), inputs)
    assert (plain - doubled).abs().max() > 1e-3
