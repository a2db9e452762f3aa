"""`p2p-real VERB ... --gpus N`: the same command under torchrun, one process per GPU (runs/ranks.py
shares the work). Imports nothing heavy until the command is checked: it runs before torch is loaded.

The command owns what it starts: torchrun runs in a process group of its own, and a signal to
`p2p-real` (Ctrl-C, SIGTERM from a job scheduler, SIGHUP from a closed terminal) is passed on to
that group; torchrun stops its workers on it, and `p2p-real` returns only once torchrun has ended,
so nothing writes after the command has returned."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from ..errors import P2PError

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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


def cuda_gpus() -> int:
    """The CUDA GPUs this process can see (torch imported here, only when --gpus asks for several)."""
    import torch

    return torch.cuda.device_count()


def launch_processes(argv: list[str], processes: int) -> int:
    """Run the command in `processes` processes on this machine under torchrun, one per CUDA GPU; its
    exit code (0 when every process ended well). torchrun stops the others when one crashes; finished
    items stay. Fewer GPUs than `processes` is a P2PError: never processes sharing a CPU unasked."""
    gpus = cuda_gpus()
    if gpus < processes:
        here = f"only {gpus} CUDA GPU(s) are" if gpus else "no CUDA GPU is"
        raise P2PError(f"--gpus {processes}: {here} available here; give --gpus {gpus} or fewer, or leave --gpus out "
                       f"to run in one process")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "p2p_real", *without_gpus(argv)]
    return run_owned(command)


def run_owned(command: list[str]) -> int:
    """Run `command` in a process group of its own, passing on the signals this process gets; its exit
    code, or 128 + the signal's number when it ended on a signal (130 for Ctrl-C)."""
    child, received = subprocess.Popen(command, start_new_session=True), []

    def forward(signum, frame):
        received.append(signum)
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:  # already gone
            pass

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        return 128 + received[0]
    return 128 - code if code < 0 else code
