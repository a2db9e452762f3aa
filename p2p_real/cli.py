"""`p2p-real invert | edit | sweep | bench | ui`: parse the command line into its verb's request
(command_line.py, runs/flags.py), hand it to the verb's job, print the outcome.

Exit 0 when all went well, 1 when some items failed, 2 for bad input or usage (one line, no traceback).
"""
from __future__ import annotations

import os
import sys
import traceback
import warnings
from importlib import import_module

from .command_line import build_parser
from .errors import P2PError
from .runs.checks import in_flag_terms
from .runs.compile_cache import use_compile_cache
from .runs.flags import build_request
from .runs.launch import launch_processes
from .runs.requests import (
    BenchEditRequest,
    BenchReconstructRequest,
    EditRequest,
    InvertRequest,
    SweepRequest,
    UiRequest,
)

# Each request's job, imported only once the request is checked, so that --help and bad input never wait for torch.
JOBS = {
    InvertRequest: ("runs.invert_command", "run_invert"),
    EditRequest: ("runs.edit_command", "run_edit"),
    SweepRequest: ("runs.sweep_command", "run_sweep"),
    BenchReconstructRequest: ("runs.bench_command", "run_bench_reconstruct"),
    BenchEditRequest: ("runs.bench_command", "run_bench_edit"),
    UiRequest: ("ui.command", "run_ui"),
}


def quiet_libraries() -> None:
    """Under --quiet, silence the libraries' own progress bars and warnings where they are made: the
    environment they read when first imported (none is imported yet), inherited by torchrun's workers.
    The user's own settings win."""
    for name, value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                        ("DIFFUSERS_VERBOSITY", "error"), ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")):
        os.environ.setdefault(name, value)


def silence_diffusers_bars() -> None:
    """diffusers reads no environment for its loading bars (a single file's "Loading pipeline
    components..."): turned off in its own logging module, once the command is known to run."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    namespace = build_parser().parse_args(argv)
    if getattr(namespace, "progress", True) is False:
        quiet_libraries()
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter is not for users of a CLI
    warnings.filterwarnings("ignore", category=UserWarning, module="huggingface_hub|diffusers|transformers")
    try:
        request = build_request(namespace)  # every path and flag, before torch is imported: a typo costs no seconds
        if getattr(namespace, "progress", True) is False:
            silence_diffusers_bars()
        if request.gpus > 1:  # relaunched under torchrun, which runs this command once per GPU
            return launch_processes(sys.argv[1:] if argv is None else argv, request.gpus)
        if request.model.compile is not False:
            use_compile_cache()  # before torch is imported, which would set its own folder under /tmp
        module, name = JOBS[type(request)]
        outcome = getattr(import_module(f".{module}", __package__), name)(request)
    except P2PError as error:
        print(f"p2p-real: error: {in_flag_terms(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("p2p-real: interrupted; finished photos are kept, run again to resume", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: one line, the traceback on request
        if os.environ.get("P2P_REAL_DEBUG"):
            traceback.print_exc()
        print(f"p2p-real: internal error: {type(error).__name__}: {error} (set P2P_REAL_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1
    for problem in outcome.problems:
        print(f"p2p-real: {problem}", file=sys.stderr)
    print("\n".join(outcome.lines))
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
