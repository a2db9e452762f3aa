"""`p2p-real ui`: the web page with the model loaded once, served until interrupted. Gradio, an
optional extra that only this verb needs, is imported only here, once the input is checked."""
from __future__ import annotations

import socket
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
    check_port(request.host, request.port)
    try:
        from .page import serve
    except ModuleNotFoundError as error:
        if error.name != "gradio":
            raise
        raise P2PError(UI_NEEDS_GRADIO) from None
    workbench = Workbench(request.model.load(), Path(request.output), paths, request.steps, request.method,
                          request.metric_weights)
    try:
        serve(workbench, request.host, request.port, request.share)
    except OSError as error:  # the port taken while the model loaded, or an address not of this machine
        raise P2PError(f"--port {request.port}: cannot serve on {request.host}:{request.port} ({error}); "
                       f"pass another --port or --host") from None
    return Outcome(lines=[f"stopped; what was inverted and edited is in {request.output}"])


def check_port(host: str, port: int) -> None:
    """That the page can listen on host:port (a port number checks.check_flags took), before the model
    loads; a P2PError naming the port."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: a closing port is free
            probe.bind((host, port))
    except OSError as error:
        raise P2PError(f"--port {port}: cannot listen on {host}:{port} ({error.strerror or error}; is another "
                       f"server using it?); pass another --port") from None
