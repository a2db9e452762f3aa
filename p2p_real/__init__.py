"""p2p-real: edit real photos with text (null-text inversion + Prompt-to-Prompt).

    from p2p_real import load_model, load_image, invert, edit, EditOptions
    model = load_model("tiny-random")
    [inversion] = invert(model, [load_image("cat.jpg", model.resolution)], ["a cat on a mat"])
    result = edit(model, inversion, "a dog on a mat", EditOptions(blend_words=("cat", "dog")))

Names are imported on first use, so that `p2p-real --help` does not wait for torch.
"""
from importlib import import_module

_PUBLIC = {
    "Inversion": "artifacts",
    "load_inversion": "artifacts",
    "save_inversion": "artifacts",
    "load_image": "images",
    "invert": "pipeline",
    "invert_photos": "runs.invert",
    "NullTextOptions": "inversion.options",
    "load_model": "loading",
    "Model": "models",
    "find_photos": "runs.photos",
    "edit": "editing.edit",
    "EditOptions": "editing.options",
    "EditJob": "runs.edits_file",
    "read_edits_file": "runs.edits_file",
    "run_edits": "runs.edits",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'p2p_real' has no attribute {name!r}")
    return getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
