"""The page's edit controls read as the command line reads its flags, with the command line's messages."""
import pytest

from p2p_real.editing.options import EditOptions
from p2p_real.errors import P2PError
from p2p_real.runs.checks import in_flag_terms
from p2p_real.ui.edit_form import EditForm, flag_values

TARGET = "a large red circle on a plain white background"


def message(form: EditForm) -> str:
    with pytest.raises(P2PError) as caught:
        form.options()
    return in_flag_terms(caught.value)


def test_an_empty_form_gives_the_cli_defaults():
    assert EditForm(TARGET).options() == EditOptions()


def test_every_field_reaches_the_options():
    options = EditForm(TARGET, "replace", " circle ", "circle", "red=2, large=0.5", 0.3, 0.5,
                       "red=0,0.8; large=0.1,0.9").options()
    assert options == EditOptions(kind="replace",
                                  cross_replace_steps={"default_": 0.3, "red": (0.0, 0.8), "large": (0.1, 0.9)},
                                  self_replace_steps=0.5, reweights={"red": 2.0, "large": 0.5},
                                  blend_words=("circle", "circle"))


def test_entries_split_on_spaces_semicolons_and_commas_between_them():
    assert flag_values("red=2, large=0.5;small=1  ") == ["red=2", "large=0.5", "small=1"]
    assert flag_values("dog=0,0.8 cat=0.2,1") == ["dog=0,0.8", "cat=0.2,1"]
    assert flag_values("") == [] and flag_values(None) == []


@pytest.mark.parametrize("form, expected", [
    (EditForm(TARGET, blend_source_word="circle"), "--blend: give two words"),
    (EditForm(TARGET, blend_target_word="circle"), "--blend: give two words"),
    (EditForm(TARGET, reweights="red"), "--reweight 'red': expected WORD=FACTOR, e.g. fluffy=2"),
    (EditForm(TARGET, reweights="red=3"), "--reweight red: must be in [-2, 2], got 3.0"),
    (EditForm(TARGET, word_steps="red=0.8"), "--word-steps 'red=0.8': expected WORD=START,END, e.g. dog=0,0.8"),
    (EditForm(TARGET, word_steps="red=0.8,0.2"),
     "--word-steps red: the window starts after it ends (0.8 > 0.2); give the start first"),
    (EditForm(TARGET, kind="swap"), "--kind: expected one of auto, replace, refine, reweight, got 'swap'"),
])
def test_a_bad_field_gets_one_line_naming_its_flag(form, expected):
    text = message(form)
    assert text.startswith(expected) and "\n" not in text
