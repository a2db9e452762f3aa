"""The page's sweep panel: `p2p-real sweep` of the current inversion to the edit form's target, with
the form's kind, LocalBlend words and re-weights; its grid (cross-replace x self-replace steps, x
LocalBlend thresholds), its progress, its grid picture and its fidelity-against-edit plot, and every
setting listed with its scores, the chosen one picked: "use this setting" puts the picked one into
the edit form's sliders. The work is ui/sweeper.py's; this module only lays it out and wires it.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..runs.sweep_grid import DEFAULT_CROSS, DEFAULT_SELF
from .edit_form import EditForm
from .markdown import as_markdown
from .sweeper import SettingChoice, SweepForm, clicked_setting, form_values
from .workbench import Workbench

INTRO = ("**Sweep** (`p2p-real sweep`): edit with every setting of the grid below, score each for fidelity "
         "(background PSNR) and for the edit, and choose one on the Pareto front. It uses the edit form's target, "
         "kind, LocalBlend words and re-weights (not the mask). Click a setting (in the list or in the grid), then "
         "**use this setting**.")


@dataclass(frozen=True)
class SweepPanel:
    cross: gr.Textbox
    self_replace: gr.Textbox
    thresholds: gr.Textbox
    sweep_button: gr.Button
    status: gr.Markdown
    grid: gr.Image
    plot: gr.Image
    setting: gr.Radio
    use_button: gr.Button
    settings: gr.State  # the shown sweep's SettingChoice list, for "use this setting"


def sweep_panel() -> SweepPanel:
    with gr.Accordion("Sweep the edit's strength", open=True, elem_id="sweep-panel"):
        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            cross = gr.Textbox(DEFAULT_CROSS, label="Cross-replace steps (--cross)", elem_id="sweep-cross")
            self_replace = gr.Textbox(DEFAULT_SELF, label="Self-replace steps (--self)", elem_id="sweep-self")
            thresholds = gr.Textbox(label="LocalBlend thresholds (--thresholds; with LocalBlend words)",
                                    placeholder="0.3", elem_id="sweep-thresholds")
            sweep_button = gr.Button("Sweep", variant="primary", elem_id="sweep-button", scale=0, min_width=120)
        status = gr.Markdown("", elem_id="sweep-status")
        with gr.Row():
            grid = gr.Image(label="the edits (grid.png): the chosen framed green, PIE-Bench's blue", type="filepath",
                            interactive=False, height=380, buttons=["download", "fullscreen"], elem_id="sweep-grid",
                            elem_classes="pixelated")
            plot = gr.Image(label="fidelity against the edit (plot.png)", type="filepath", interactive=False,
                            height=380, buttons=["download", "fullscreen"], elem_id="sweep-plot")
        with gr.Row(equal_height=True):
            setting = gr.Radio([], label="Settings (click one; the sweep's choice is picked)", elem_id="sweep-setting",
                               scale=4)
            use_button = gr.Button("Use this setting", elem_id="sweep-use", scale=1, min_width=140)
    return SweepPanel(cross, self_replace, thresholds, sweep_button, status, grid, plot, setting, use_button,
                      gr.State([]))


def wire_sweep(page, panel: SweepPanel, workbench: Workbench, queue: str) -> None:
    """`page`: the page's components (ui/page.py's Page), whose edit form the sweep reads and fills."""
    def on_sweep(artifact, target, kind, blend_source_word, blend_target_word, reweights, word_steps, cross,
                 self_replace, thresholds, progress=gr.Progress(track_tqdm=True)):
        form = EditForm(target or "", kind, blend_source_word or "", blend_target_word or "", reweights or "",
                        word_steps=word_steps or "")
        view = workbench.sweep(artifact, form, SweepForm(cross or "", self_replace or "", thresholds or ""))
        if view.failed:
            gr.Warning(view.message)
            return {panel.status: f"**Not done:** {as_markdown(view.message)}"}
        labels = [choice.label for choice in view.settings]
        return {panel.grid: view.grid, panel.plot: view.plot, panel.settings: list(view.settings),
                panel.setting: gr.Radio(choices=labels, value=None if view.chosen is None else labels[view.chosen]),
                panel.status: as_markdown(view.message)}

    def on_use(label, settings: list[SettingChoice], threshold_now):
        choice = next((choice for choice in settings if choice.label == label), None)
        if choice is None:
            return {panel.status: "**Not done:** sweep first, then click one of its settings"}
        cross, self_replace, threshold = form_values(choice, threshold_now)
        return {page.cross_replace_steps: cross, page.self_replace_steps: self_replace,
                page.blend_threshold: threshold,
                panel.status: as_markdown(f"the edit form now has {choice.label.split(':')[0]}; press Edit")}

    def on_grid_click(settings: list[SettingChoice], event: gr.SelectData):
        choice = clicked_setting(settings, *event.index)
        return gr.Radio() if choice is None else gr.Radio(value=choice.label)

    inputs = [page.artifact, page.target, page.kind, page.blend_source_word, page.blend_target_word, page.reweights,
              page.word_steps, panel.cross, panel.self_replace, panel.thresholds]
    panel.sweep_button.click(on_sweep, inputs=inputs,
                             outputs=[panel.grid, panel.plot, panel.settings, panel.setting, panel.status],
                             show_progress_on=panel.grid, concurrency_id=queue, concurrency_limit=1)
    panel.grid.select(on_grid_click, inputs=panel.settings, outputs=panel.setting)
    panel.use_button.click(on_use, inputs=[panel.setting, panel.settings, page.blend_threshold],
                           outputs=[page.cross_replace_steps, page.self_replace_steps, page.blend_threshold,
                                    panel.status])

