"""A sweep's settings, read from its sweep.json, as the page lists them and as "use this setting"
fills the edit form."""
import math

from p2p_real.runs.sweep_figures import CELL_SIDE, GridLayout
from p2p_real.runs.sweep_grid import SweepGrid
from p2p_real.ui.sweeper import SettingChoice, clicked_setting, form_values, setting_choices


def row(cross, self_replace, threshold, psnr, score, pareto=False):
    return {"cross_replace_steps": cross, "self_replace_steps": self_replace, "blend_threshold": threshold,
            "psnr_bg": psnr, "edit_score": score, "pareto": pareto, "in_grid": True}


def test_each_setting_is_labelled_with_its_scores_and_the_choice_named():
    rows = [row(0.2, 0.2, 0.3, 31.25, 0.5), row(0.8, 0.2, 0.6, 24.0, 1.0, pareto=True),
            row(0.4, 0.6, 0.3, None, None), row(0.2, 0.8, 0.3, math.nan, 1.0)]
    record = {"rows": rows, "chosen": rows[1], "pie_bench": rows[2]}
    assert setting_choices(record) == [
        SettingChoice("cross 0.2, self 0.2, threshold 0.3: PSNR 31.2 dB, edit 0.50", 0.2, 0.2, 0.3, True),
        SettingChoice("cross 0.8, self 0.2, threshold 0.6: PSNR 24.0 dB, edit 1.00 (chosen, Pareto front)",
                      0.8, 0.2, 0.6),
        SettingChoice("cross 0.4, self 0.6, threshold 0.3: failed (PIE-Bench's)", 0.4, 0.6, 0.3),
        SettingChoice("cross 0.2, self 0.8, threshold 0.3: failed", 0.2, 0.8, 0.3)]


def test_use_this_setting_fills_cross_self_and_the_threshold_a_sweep_had():
    assert form_values(SettingChoice("x", 0.8, 0.2, 0.6), 0.3) == (0.8, 0.2, 0.6)
    # a sweep without LocalBlend says nothing of the threshold: the form keeps the one it has
    assert form_values(SettingChoice("x", 0.6, 0.4, None), 0.45) == (0.6, 0.4, 0.45)
    no_blend = setting_choices({"rows": [row(0.6, 0.4, None, 30.0, 0.9)], "chosen": None, "pie_bench": None})
    assert no_blend[0].label == "cross 0.6, self 0.4: PSNR 30.0 dB, edit 0.90" and no_blend[0].blend_threshold is None


def test_a_click_on_the_grid_picture_picks_the_setting_drawn_there():
    settings = SweepGrid((0.2, 0.8), (0.2, 0.5, 0.8), (0.3, 0.6)).settings()  # 12 cells and PIE-Bench's beside
    choices = [SettingChoice(setting.label, setting.cross_replace_steps, setting.self_replace_steps,
                             setting.blend_threshold, setting.in_grid) for setting in settings]
    layout = GridLayout.of(settings)
    for choice, setting in zip(choices, settings):
        if setting.in_grid:
            left, top = layout.corner(setting)
            for dx, dy in ((1, 1), (CELL_SIDE - 2, CELL_SIDE - 2), (CELL_SIDE // 2, CELL_SIDE + 20)):  # its scores too
                assert clicked_setting(choices, left + dx, top + dy) == choice, (setting, dx, dy)
    assert not settings[-1].in_grid  # PIE-Bench's 0.4 / 0.6, not drawn: no click finds it
    width, height = layout.size
    for x, y in ((5, 100), (100, 5), (width + 3, 100), (100, height + 3), (100, layout.block_height + 10)):
        assert clicked_setting(choices, x, y) is None, (x, y)  # labels, headers, off the picture
