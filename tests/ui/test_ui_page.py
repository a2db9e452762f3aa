"""The page's layout and wiring, without a browser: its controls, its queue, and how the handlers
turn the workbench's answers into updates (a failure changes only the status line)."""
import warnings
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the ui extra is not installed: pip install -e '.[dev,ui]'")

from p2p_real.ui.edit_form import EditForm  # noqa: E402
from p2p_real.ui.page import as_markdown, build_page  # noqa: E402
from p2p_real.ui.sweeper import SettingChoice, SweepForm, SweepView  # noqa: E402
from p2p_real.ui.workbench import EditView, InversionView, Workbench  # noqa: E402

CIRCLE = Path(__file__).resolve().parents[2] / "data" / "shapes" / "circle.png"  # a 64-pixel scene
CONTROLS = {"picker", "refresh", "photo", "caption", "replace", "invert-button", "target", "kind", "blend-source",
            "blend-target", "reweights", "cross-replace-steps", "self-replace-steps", "word-steps", "mask", "painter",
            "painted-region", "blend-threshold", "redo",
            "edit-button", "status", "source-image", "reconstruction-image", "edited-image", "maps-image"}


class ScriptedWorkbench(Workbench):
    """Answers each button with a given view, and records what it was asked."""

    def __init__(self, output: Path, view):
        super().__init__(model=None, output=output)
        self.view, self.asked = view, []

    def invert(self, photo, caption, replace=False, uploaded=False):
        self.asked.append((photo, caption, replace))
        return self.view

    def edit(self, artifact, form, redo=False):
        self.asked.append((artifact, form, redo))
        return self.view

    def sweep(self, artifact, form, grid):
        self.asked.append((artifact, form, grid))
        return self.view


def handler(blocks, name: str):
    [function] = [function for function in blocks.fns.values() if function.name == name]
    return function


def updates_by_id(updates: dict) -> dict:
    return {component.elem_id: value for component, value in updates.items()}


def test_the_page_has_every_control_and_runs_inversions_and_edits_one_at_a_time(tmp_path):
    blocks = build_page(Workbench(model=None, output=tmp_path))
    assert CONTROLS <= {block.elem_id for block in blocks.blocks.values()}
    for name in ("on_invert", "on_edit"):
        assert (handler(blocks, name).concurrency_id, handler(blocks, name).concurrency_limit) == ("model", 1)


def test_an_edit_reads_the_form_and_shows_the_saved_files(tmp_path):
    workbench = ScriptedWorkbench(tmp_path, EditView("edited in 1.0 s (replace): out/circle/red/edited.png",
                                                     edited="out/circle/red/edited.png",
                                                     maps="out/circle/red/maps.png"))
    on_edit = handler(build_page(workbench), "on_edit").fn
    updates = updates_by_id(on_edit("out/circle", "a red circle", "replace", "circle", "circle", "red=2", 0.3, 0.5,
                                    None, "left.png", None, "keep this", 0.45, True))
    assert workbench.asked == [("out/circle", EditForm("a red circle", "replace", "circle", "circle", "red=2", 0.3, 0.5,
                                                       "", "left.png", None, "keep this", 0.45), True)]
    assert updates == {"edited-image": "out/circle/red/edited.png", "maps-image": "out/circle/red/maps.png",
                       "status": r"edited in 1.0 s \(replace\): out/circle/red/edited.png"}


def test_a_failure_changes_only_the_status_line(tmp_path):
    message = "the word 'purple' is not in the prompt 'a large red circle'"
    workbench = ScriptedWorkbench(tmp_path, InversionView(message, failed=True))
    on_invert = handler(build_page(workbench), "on_invert").fn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gr.Warning, outside a request, warns here instead of in the page
        updates = updates_by_id(on_invert("/tmp/upload/circle.png", None, "a large circle", False))
    assert workbench.asked == [("/tmp/upload/circle.png", "a large circle", False)]
    assert updates == {"status": f"**Not done:** {as_markdown(message)}"}


def test_a_picked_photo_is_inverted_where_it_lies(tmp_path):
    workbench = ScriptedWorkbench(tmp_path, InversionView("inverted", artifact="out/circle", caption="a circle",
                                                          source="out/circle/source.png",
                                                          painting_photo=str(CIRCLE),
                                                          reconstruction="out/circle/reconstruction.png"))
    on_invert = handler(build_page(workbench), "on_invert").fn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gradio's: the scripted out/circle is not among the picker's entries
        updates = updates_by_id(on_invert("/tmp/gradio/abc/circle.png", str(CIRCLE), "a circle", True))
    assert workbench.asked == [(str(CIRCLE), "a circle", True)]
    assert updates["target"] == "a circle" and updates["edited-image"] is None and updates["picker"] is not None
    assert "painter" not in updates  # the picked photo was on the brush's canvas already: what was painted stays
    updates = updates_by_id(handler(build_page(workbench), "on_pick").fn(str(CIRCLE)))
    painter = updates["painter"].constructor_args  # the brush's canvas: the photo, unpainted, a brush to fit it
    assert painter["value"] == {"background": str(CIRCLE), "layers": [], "composite": None}
    assert painter["brush"].default_size == 6  # a tenth of the 64-pixel scene


def test_messages_show_as_typed():
    assert as_markdown("reweights of 'a_b': *x* [1, 2] #3") == r"reweights of 'a\_b': \*x\* \[1, 2\] \#3"


def test_a_sweep_shows_its_pictures_and_use_this_setting_fills_the_edit_form(tmp_path):
    settings = (SettingChoice("cross 0.2, self 0.8, threshold 0.6: PSNR 30.0 dB, edit 1.00 (chosen)", 0.2, 0.8, 0.6),
                SettingChoice("cross 0.4, self 0.6, threshold 0.3: PSNR 28.0 dB, edit 0.50", 0.4, 0.6, 0.3))
    workbench = ScriptedWorkbench(tmp_path, SweepView("swept 2 setting(s)", folder="out/circle/sweeps/red",
                                                      grid="g.png", plot="p.png", settings=settings, chosen=0))
    blocks = build_page(workbench)
    assert (handler(blocks, "on_sweep").concurrency_id, handler(blocks, "on_sweep").concurrency_limit) == ("model", 1)
    updates = updates_by_id(handler(blocks, "on_sweep").fn("out/circle", "a red circle", "auto", "circle", "circle",
                                                          "", "", "0.2,0.4", "0.6,0.8", "0.3,0.6"))
    assert workbench.asked == [("out/circle", EditForm("a red circle", "auto", "circle", "circle"),
                                SweepForm("0.2,0.4", "0.6,0.8", "0.3,0.6"))]
    assert (updates["sweep-grid"], updates["sweep-plot"]) == ("g.png", "p.png")
    assert updates["sweep-setting"].value == settings[0].label
    on_use = handler(blocks, "on_use").fn
    used = updates_by_id(on_use(settings[1].label, list(settings), 0.45))
    assert (used["cross-replace-steps"], used["self-replace-steps"], used["blend-threshold"]) == (0.4, 0.6, 0.3)
    assert "sweep first" in updates_by_id(on_use(None, [], 0.3))["sweep-status"]


def test_a_click_on_the_sweeps_grid_picks_that_setting(tmp_path):
    import gradio as gr

    from p2p_real.runs.sweep_figures import LABEL_WIDTH, GridLayout
    from p2p_real.runs.sweep_grid import SweepGrid

    settings = SweepGrid((0.2, 0.8), (0.2, 0.8)).settings()
    choices = [SettingChoice(setting.label, setting.cross_replace_steps, setting.self_replace_steps,
                             setting.blend_threshold, setting.in_grid) for setting in settings]
    on_grid_click = handler(build_page(ScriptedWorkbench(tmp_path, None)), "on_grid_click").fn
    left, top = GridLayout.of(settings).corner(settings[2])  # cross 0.8, self 0.2
    clicked = on_grid_click(choices, gr.SelectData(None, {"index": [left + 50, top + 50], "value": None}))
    assert clicked.constructor_args == {"value": "cross 0.8, self 0.2"}
    missed = on_grid_click(choices, gr.SelectData(None, {"index": [LABEL_WIDTH - 5, top + 50], "value": None}))
    assert missed.constructor_args == {}
