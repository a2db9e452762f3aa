"""`p2p-real ui`: the web page with the model loaded once, served until interrupted. Gradio, an
optional extra that only this verb needs, is imported only here, once the input is checked."""
from __future__ import annotations

from pathlib import Path

from ..errors import P2PError
from ..runs.checks import UI_NEEDS_GRADIO
from ..runs.outcome import Outcome
from ..runs.requests import UiRequest
from .picker import check_inputs
from .workbench import Workbench


def run_ui(request: UiRequest) -> Outcome:
    paths = [Path(path) for path in request.inputs]
    check_inputs(paths)  # a folder with nothing to pick is bad input before the model loads
    try:
        from .page import serve
    except ModuleNotFoundError as error:
        if error.name != "gradio":
            raise
        raise P2PError(UI_NEEDS_GRADIO) from None
    workbench = Workbench(request.model.load(), Path(request.output), paths, request.steps, request.method)
    serve(workbench, request.host, request.port, request.share)
    return Outcome(lines=[f"stopped; what was inverted and edited is in {request.output}"])
