"""The page's edit form, laid out: target caption, kind, LocalBlend, re-weights, the replacement
windows, and the mask, painted with a brush over the photo or uploaded (ui/brush.py reads the
painting). The values go to `EditForm` (ui/edit_form.py) in `Page.edit_inputs()`'s order."""
from __future__ import annotations

import gradio as gr

from ..editing.options import EDIT_KINDS, EditOptions
from .brush import EDIT_HERE, REGIONS

BRUSH_COLOUR = "#ff2d78"  # a pink seen over photos and the shapes model's scenes alike
BRUSH_OPACITY = 0.6  # the photo shows through the painted region


def edit_controls() -> dict:
    target = gr.Textbox(label="Target caption: the caption, edited",
                        placeholder="a large red circle on a plain white background", elem_id="target")
    kind = gr.Radio(list(EDIT_KINDS), value="auto",
                    label="Kind (--kind): auto replaces when the word counts match, else refines", elem_id="kind")
    with gr.Row():
        blend_source_word = gr.Textbox(label="LocalBlend (--blend): caption word", placeholder="circle",
                                       elem_id="blend-source")
        blend_target_word = gr.Textbox(label="…and target word", placeholder="circle", elem_id="blend-target")
        reweights = gr.Textbox(label="Re-weights (--reweight)", placeholder="red=2 (factors in [-2, 2])",
                               elem_id="reweights")
    with gr.Row():
        cross_replace_steps = gr.Slider(0, 1, value=EditOptions.cross_replace_steps, step=0.05,
                                        label="Cross-replace steps (--cross-replace-steps)",
                                        elem_id="cross-replace-steps")
        self_replace_steps = gr.Slider(0, 1, value=EditOptions.self_replace_steps, step=0.05,
                                       label="Self-replace steps (--self-replace-steps)", elem_id="self-replace-steps")
        blend_threshold = gr.Slider(0, 1, value=EditOptions.blend_threshold, step=0.05,
                                    label="LocalBlend threshold (an edits file's blend_threshold)",
                                    elem_id="blend-threshold")
    painter, painted_region, mask = mask_controls()
    with gr.Row(equal_height=True):
        word_steps = gr.Textbox(label="A word's own window (--word-steps)", placeholder="red=0,0.8", scale=2,
                                elem_id="word-steps")
        redo = gr.Checkbox(label="redo it if already made (--force)", scale=2, elem_id="redo")
        edit_button = gr.Button("Edit", variant="primary", scale=1, elem_id="edit-button")
    return dict(target=target, kind=kind, blend_source_word=blend_source_word, blend_target_word=blend_target_word,
                reweights=reweights, cross_replace_steps=cross_replace_steps, self_replace_steps=self_replace_steps,
                blend_threshold=blend_threshold,
                word_steps=word_steps, mask=mask, painter=painter, painted_region=painted_region, redo=redo,
                edit_button=edit_button)


def mask_controls() -> tuple[gr.ImageEditor, gr.Radio, gr.Image]:
    """The mask (--mask): painted with a brush over the photo (the eraser takes strokes back), or a file uploaded."""
    painter = gr.ImageEditor(label="Mask (--mask): paint over the photo with the brush; the eraser takes it back",
                             type="pil", image_mode="RGBA", sources=[], transforms=[], layers=False, format="png",
                             brush=brush(),
                             eraser=gr.Eraser(), height=300, elem_id="painter", elem_classes="pixelated")
    with gr.Row(equal_height=True):
        painted_region = gr.Radio(list(REGIONS), value=EDIT_HERE, label="The painted region is what to…",
                                  elem_id="painted-region", scale=2)
        mask = gr.Image(label="…or upload a mask: white edits, black keeps", type="filepath", image_mode=None,
                        sources=["upload"], height=110, elem_id="mask", scale=1)
    return painter, painted_region, mask


def brush(size: int | str = "auto") -> gr.Brush:
    """One colour, half see-through, so that the painted region shows over the photo."""
    return gr.Brush(colors=[(BRUSH_COLOUR, BRUSH_OPACITY)], default_color=(BRUSH_COLOUR, BRUSH_OPACITY),
                    color_mode="fixed", default_size=size)
