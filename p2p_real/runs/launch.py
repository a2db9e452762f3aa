"""`p2p-real VERB ... --gpus N`: the same command under torchrun, one process per GPU (runs/ranks.py
shares the work). Imports nothing heavy: it runs before torch is loaded."""
from __future__ import annotations

import subprocess
import sys


def without_gpus(argv: list[str]) -> list[str]:
    """`argv` without its `--gpus N` / `--gpus=N`."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--gpus":
            skip = True
        elif not argument.startswith("--gpus="):
            kept.append(argument)
    return kept


def launch_processes(argv: list[str], processes: int) -> int:
    """Run the command in `processes` processes on this machine under torchrun; its exit code (0
    when every process ended well). torchrun stops the others when one crashes; finished items stay."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "p2p_real", *without_gpus(argv)]
    try:
        return subprocess.run(command).returncode
    except KeyboardInterrupt:
        return 130
