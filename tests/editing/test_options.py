"""Options check themselves when made: a bad value is an OptionError (a ValueError) naming the field in
the Python API's terms, never a flag."""
import math

import pytest

from p2p_real.editing.options import EditOptions
from p2p_real.errors import OptionError, P2PError
from p2p_real.inversion.options import NullTextOptions


@pytest.mark.parametrize("values, field, word", [
    ({"kind": "swap"}, "kind", None),
    ({"cross_replace_steps": 5}, "cross_replace_steps", None),
    ({"cross_replace_steps": "0.4"}, "cross_replace_steps", None),
    ({"cross_replace_steps": (0.5, 0.2)}, "cross_replace_steps", None),
    ({"cross_replace_steps": (0.1, 0.2, 0.3)}, "cross_replace_steps", None),
    ({"cross_replace_steps": {"default_": 0.4, "dog": (0.8, 0.2)}}, "cross_replace_steps", "dog"),
    ({"cross_replace_steps": {"dog": math.nan}}, "cross_replace_steps", "dog"),
    ({"cross_replace_steps": {"": 0.4}}, "cross_replace_steps", None),
    ({"self_replace_steps": -1}, "self_replace_steps", None),
    ({"self_replace_steps": True}, "self_replace_steps", None),
    ({"reweights": {"tabby": math.nan}}, "reweights", "tabby"),
    ({"reweights": {"tabby": 3.0}}, "reweights", "tabby"),
    ({"reweights": {"tabby": "2"}}, "reweights", "tabby"),
    ({"reweights": {5: 1.0}}, "reweights", None),
    ({"reweights": ["tabby"]}, "reweights", None),
    ({"blend_words": "cat"}, "blend_words", None),
    ({"blend_words": ("cat",)}, "blend_words", None),
    ({"blend_words": ("cat", "")}, "blend_words", None),
    ({"blend_start": 1.5}, "blend_start", None),
    ({"blend_threshold": math.inf}, "blend_threshold", None),
])
def test_edit_options_refuse_bad_values(values, field, word):
    with pytest.raises(OptionError) as caught:
        EditOptions(**values)
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, P2PError)
    assert (error.field, error.word) == (field, word) and str(error).startswith(field) and "--" not in str(error)


def test_edit_options_take_every_documented_form():
    EditOptions(cross_replace_steps=(0.0, 0.8), self_replace_steps=[0.2, 0.6], reweights={"tabby": -2},
                blend_words=["cat", "dog"])
    EditOptions(cross_replace_steps={"default_": 0.4, "dog": [0, 0.8], "cat": 1}, kind="refine", blend_start=0,
                blend_threshold=1)


@pytest.mark.parametrize("values, field", [
    ({"num_inner_steps": -1}, "num_inner_steps"),
    ({"num_inner_steps": 2.5}, "num_inner_steps"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": math.nan}, "learning_rate"),
    ({"early_stop_epsilon": math.inf}, "early_stop_epsilon"),
    ({"early_stop_slope": "0"}, "early_stop_slope"),
    ({"loss_scale": -1.0}, "loss_scale"),
    ({"stop_batch_early": "no"}, "stop_batch_early"),
])
def test_null_text_options_refuse_bad_values(values, field):
    with pytest.raises(OptionError) as caught:
        NullTextOptions(**values)
    assert caught.value.field == field and "--" not in str(caught.value)


def test_a_negative_early_stop_threshold_means_never_stop_early():
    assert NullTextOptions(early_stop_epsilon=-1.0, early_stop_slope=0.0, num_inner_steps=0).early_stop_epsilon == -1.0
