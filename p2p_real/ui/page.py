"""The page of `p2p-real ui`, laid out with Gradio (as are its parts, ui/edit_controls.py and
ui/sweep_panel.py; nothing else imports it): pick or upload a photo, type its caption, invert; then
edit as often as wanted, painting the mask if wanted, or sweep the edit's strength. Each button calls the app's
`Workbench`; what a browser session works on (its current inversion) lives in that session's
gr.State, never in this module. Inversions and edits run in Gradio's queue, one at a time on the
model, with their progress bars (tqdm's, followed by gr.Progress) in the page.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .brush import EDIT_HERE, brush_size
from .edit_controls import brush, edit_controls
from .edit_form import EditForm
from .markdown import as_markdown
from .sweep_panel import sweep_panel, wire_sweep
from .workbench import EditView, InversionView, Workbench

TITLE = "p2p-real: edit a photo by editing its caption"
INTRO = ("**1.** Upload a photo or pick one, type its caption and **invert** it (null-text inversion; kept in the "
         "output folder, and reused next time). **2.** Type a target caption (change a word, add one) and **edit**, "
         "as often as you like.")
# Results as large as their boxes; a small model's (64x64 for shapes) stay sharp rather than blur.
CSS = ".pixelated img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }"
MODEL_QUEUE = "model"  # inversions and edits share one queue: one job at a time on the model


@dataclass(frozen=True)
class Page:
    """The page's components, as the event handlers read and write them."""

    artifact: gr.State  # this session's current inversion: its artifact folder
    picked_photo: gr.State  # a photo picked from the list, inverted where it lies (so named as the CLI names it)
    picker: gr.Dropdown
    refresh: gr.Button
    photo: gr.Image
    caption: gr.Textbox
    replace: gr.Checkbox
    invert_button: gr.Button
    target: gr.Textbox
    kind: gr.Radio
    blend_source_word: gr.Textbox
    blend_target_word: gr.Textbox
    reweights: gr.Textbox
    cross_replace_steps: gr.Slider
    self_replace_steps: gr.Slider
    blend_threshold: gr.Slider
    word_steps: gr.Textbox
    mask: gr.Image
    painter: gr.ImageEditor
    painted_region: gr.Radio
    redo: gr.Checkbox
    edit_button: gr.Button
    status: gr.Markdown
    source: gr.Image
    reconstruction: gr.Image
    edited: gr.Image
    maps: gr.Image

    def edit_inputs(self) -> list:
        """The edit form's components, in EditForm's order, after the artifact."""
        return [self.artifact, self.target, self.kind, self.blend_source_word, self.blend_target_word, self.reweights,
                self.cross_replace_steps, self.self_replace_steps, self.word_steps, self.mask, self.painter,
                self.painted_region, self.blend_threshold, self.redo]


def serve(workbench: Workbench, host: str, port: int, share: bool) -> None:
    """Serve the page until interrupted (Ctrl-C); only the output folder and the inputs are served as files."""
    blocks = build_page(workbench)
    blocks.queue()
    # quiet: Gradio's own lines speak of launch(share=True), where our users have --share
    _, local_url, share_url = blocks.launch(
        server_name=host, server_port=port, share=share, quiet=True, prevent_thread_lock=True, ssr_mode=False, css=CSS,
        allowed_paths=[str(path) for path in (workbench.output, *workbench.inputs)], footer_links=[])
    print(f"p2p-real ui: serving {local_url}{f' and {share_url}' if share_url else ''} (Ctrl-C stops it); "
          f"results go to {workbench.output}", flush=True)
    blocks.block_thread()


def build_page(workbench: Workbench) -> gr.Blocks:
    # Gradio copies each file it shows into its cache; a server left running clears what is a day old.
    with gr.Blocks(title="p2p-real", analytics_enabled=False, delete_cache=(3600, 86400)) as blocks:
        gr.Markdown(f"## {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column():
                inversion = inversion_controls()
            with gr.Column():
                edit = edit_controls()
        results = result_views()
        panel = sweep_panel()
        page = Page(artifact=gr.State(None), picked_photo=gr.State(None), **inversion, **edit, **results)
        wire_inversion(page, workbench)
        wire_edit(page, workbench)
        wire_sweep(page, panel, workbench, MODEL_QUEUE)
        blocks.load(lambda: picker_update(workbench), outputs=page.picker)
    return blocks


def inversion_controls() -> dict:
    with gr.Row(equal_height=True):
        picker = gr.Dropdown(label="Pick a photo or a kept inversion", choices=[], value=None, scale=8,
                             elem_id="picker")
        refresh = gr.Button("↻ refresh", scale=1, min_width=90, elem_id="refresh")
    photo = gr.Image(label="…or upload a photo", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                     height=150, elem_id="photo")
    caption = gr.Textbox(label="Caption: what the photo shows",
                         placeholder="a large blue circle on a plain white background", elem_id="caption")
    with gr.Row(equal_height=True):
        replace = gr.Checkbox(label="replace a kept inversion made otherwise (--force)", scale=3, elem_id="replace")
        invert_button = gr.Button("Invert", variant="primary", scale=1, elem_id="invert-button")
    return dict(picker=picker, refresh=refresh, photo=photo, caption=caption, replace=replace,
                invert_button=invert_button)


def result_views() -> dict:
    status = gr.Markdown("Upload a photo or pick one, type its caption, and invert it.", elem_id="status")
    with gr.Row():
        source, reconstruction, edited = (
            gr.Image(label=label, type="filepath", interactive=False, height=260, buttons=["download", "fullscreen"],
                     elem_id=f"{name}-image", elem_classes="pixelated")
            for name, label in (("source", "source"), ("reconstruction", "reconstruction"), ("edited", "edit")))
        maps = gr.Image(label="the edit's attention per target token (maps.png)", type="filepath", interactive=False,
                        height=260, scale=2, buttons=["download", "fullscreen"], elem_id="maps-image")
    return dict(status=status, source=source, reconstruction=reconstruction, edited=edited, maps=maps)


def wire_inversion(page: Page, workbench: Workbench) -> None:
    def on_pick(choice):
        view = workbench.pick(choice)
        return shown(page, view, {page.photo: view.photo, page.picked_photo: view.photo})

    def on_invert(photo, picked_photo, caption, replace, progress=gr.Progress(track_tqdm=True)):
        view = workbench.invert(picked_photo or photo, caption, replace, uploaded=not picked_photo)
        updates = shown(page, view, {page.picker: picker_update(workbench, view.artifact)})
        if picked_photo and view.painting_photo == picked_photo:
            updates.pop(page.painter, None)  # the brush's canvas has this photo already: keep what was painted
        return updates

    def on_upload():  # a new photo: the session's inversion was of another one
        return {page.artifact: None, page.picked_photo: None, page.source: None, page.reconstruction: None,
                page.edited: None, page.maps: None, page.painter: None,
                page.status: "Type the photo's caption and invert it."}

    everything = [page.artifact, page.picked_photo, page.photo, page.caption, page.target, page.source,
                  page.reconstruction, page.edited, page.maps, page.painter, page.status, page.picker]
    page.picker.input(on_pick, inputs=page.picker, outputs=everything)
    page.refresh.click(lambda picked: picker_update(workbench, picked), inputs=page.picker, outputs=page.picker)
    gr.on([page.photo.upload, page.photo.clear], on_upload, outputs=everything)
    gr.on([page.invert_button.click, page.caption.submit], on_invert,
          inputs=[page.photo, page.picked_photo, page.caption, page.replace], outputs=everything,
          show_progress_on=page.reconstruction, concurrency_id=MODEL_QUEUE, concurrency_limit=1)


def wire_edit(page: Page, workbench: Workbench) -> None:
    def on_edit(artifact, target, kind, blend_source_word, blend_target_word, reweights, cross_replace_steps,
                self_replace_steps, word_steps, mask, painting, painted_region, blend_threshold, redo,
                progress=gr.Progress(track_tqdm=True)):
        form = EditForm(target or "", kind, blend_source_word or "", blend_target_word or "", reweights or "",
                        cross_replace_steps, self_replace_steps, word_steps or "", mask or "", painting,
                        painted_region or EDIT_HERE, blend_threshold)
        view = workbench.edit(artifact, form, redo)
        return edit_shown(page, view)

    gr.on([page.edit_button.click, page.target.submit], on_edit, inputs=page.edit_inputs(),
          outputs=[page.edited, page.maps, page.status], show_progress_on=page.edited,
          concurrency_id=MODEL_QUEUE, concurrency_limit=1)


def shown(page: Page, view: InversionView, also: dict) -> dict:
    """An inversion's (or a picked photo's) updates; after a failure only the status changes."""
    if view.failed:
        return failed(page, view.message)
    return {page.artifact: view.artifact, page.caption: view.caption, page.target: view.caption,
            page.source: view.source, page.reconstruction: view.reconstruction, page.edited: None, page.maps: None,
            page.painter: canvas(view.painting_photo or view.photo), page.status: as_markdown(view.message), **also}


def canvas(photo: str | None) -> gr.ImageEditor:
    """The brush's canvas: the photo, nothing painted yet, and a brush of a width to paint it with."""
    if not photo:
        return gr.ImageEditor(value=None)
    return gr.ImageEditor(value={"background": photo, "layers": [], "composite": None},
                          brush=brush(brush_size(photo)))


def edit_shown(page: Page, view: EditView) -> dict:
    if view.failed:
        return failed(page, view.message)
    return {page.edited: view.edited, page.maps: view.maps, page.status: as_markdown(view.message)}


def failed(page: Page, message: str) -> dict:
    gr.Warning(message)
    return {page.status: f"**Not done:** {as_markdown(message)}"}


def picker_update(workbench: Workbench, value: str | None = None) -> gr.Dropdown:
    """The picker's entries read afresh (with what the command line made since); `value`: the one to show as picked."""
    return gr.Dropdown(choices=[(choice.label, str(choice.path)) for choice in workbench.choices()], value=value)
