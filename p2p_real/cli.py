"""`p2p-real invert | edit | sweep | bench | ui`: parse the command line (command_line.py), call runs/commands.py, print.

Exit 0 when all went well, 1 when some items failed, 2 for bad input or usage (one line, no traceback).
"""
from __future__ import annotations

import os
import sys
import traceback
import warnings

from .command_line import MODEL_OPTIONS, build_parser
from .defaults import DEFAULT_STEPS, SMALL_MODEL_STEPS
from .errors import P2PError
from .runs.checks import check_command_line, in_flag_terms
from .runs.compile_cache import use_compile_cache
from .runs.launch import launch_processes


def main(argv: list[str] | None = None) -> int:
    options = vars(build_parser().parse_args(argv))
    if options.get("steps", 0) is None:  # the paper's 50, but seconds-fast runs on the smoke model
        options["steps"] = SMALL_MODEL_STEPS.get(options["model"], DEFAULT_STEPS)
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter is not for users of a CLI
    warnings.filterwarnings("ignore", category=UserWarning, module="huggingface_hub|diffusers|transformers")
    try:
        check_command_line(options)  # every path and flag, before torch is imported: a typo costs no seconds
        if options.get("gpus", 1) > 1:  # relaunched under torchrun, which runs this command once per GPU
            return launch_processes(sys.argv[1:] if argv is None else argv, options["gpus"])
        if options.get("compile") is not False:
            use_compile_cache()  # before torch is imported, which would set its own folder under /tmp
        from .runs import commands  # here, so that --help and bad input never wait for torch

        command = getattr(commands, options.pop("command"))
        model_choice = commands.ModelChoice(*(options.pop(name) for name in MODEL_OPTIONS))
        outcome = command(model_choice=model_choice, **{key: value for key, value in options.items() if key not in ("verb", "bench", "gpus")})
    except P2PError as error:
        print(f"p2p-real: error: {in_flag_terms(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("p2p-real: interrupted; finished photos are kept, run again to resume", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: one line, the traceback on request
        if os.environ.get("P2P_REAL_DEBUG"):
            traceback.print_exc()
        print(f"p2p-real: internal error: {type(error).__name__}: {error} (set P2P_REAL_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    for problem in outcome.problems:
        print(f"p2p-real: {problem}", file=sys.stderr)
    print("\n".join(outcome.lines))
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
