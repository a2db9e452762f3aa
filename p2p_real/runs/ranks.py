"""Runs shared across processes that a launcher started: `torchrun --nproc-per-node N -m p2p_real ...`,
`accelerate launch -m p2p_real ...`, across nodes as well. Each rank takes a disjoint, deterministic
share of the work; rank 0 gathers what the others did and speaks for all.

torch.distributed's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) is the
only protocol: no process pool or socket of our own. A process started without a launcher is rank
0 of 1 and nothing changes. Items are done and written one by one, each under its lock
(runs/locks.py), so a rank that fails or is killed loses none of another rank's results, and a
rerun finishes only what is missing, whatever the number of ranks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Sequence, TypeVar

Item = TypeVar("Item")
GATHER_TIMEOUT = timedelta(hours=12)  # ranks wait at the end for the slowest one


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls, environment=None) -> "Ranks":
        environment = os.environ if environment is None else environment
        world_size = int(environment.get("WORLD_SIZE", 1))
        rank = int(environment.get("RANK", 0))
        return cls(rank, world_size, int(environment.get("LOCAL_RANK", rank)))

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence[Item], key: Callable[[Item], str]) -> list[Item]:
        """This rank's items: the distinct keys sorted, every world_size-th from this rank's place, so
        shares are disjoint, cover everything, and do not depend on the order items were found in.
        Items with one key (say, edits of one photo) stay together on one rank."""
        keys = sorted({key(item) for item in items})
        mine = set(keys[self.rank :: self.world_size])
        return [item for item in items if key(item) in mine]

    def device(self, requested: str | None) -> str | None:
        """A named device as given; otherwise, with several ranks on a machine with GPUs, this rank's GPU."""
        if requested is not None or self.world_size == 1:
            return requested
        import torch

        return f"cuda:{self.local_rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"

    def gather(self, value) -> list | None:
        """Every rank's `value` (picklable), in rank order, on rank 0; None on the others. Each rank
        calls it once, at the end of its share (gloo on the CPU: the values are small summaries)."""
        if self.world_size == 1:
            return [value]
        import torch.distributed as distributed

        distributed.init_process_group("gloo", rank=self.rank, world_size=self.world_size, timeout=GATHER_TIMEOUT)
        try:
            values = [None] * self.world_size if self.leader else None
            distributed.gather_object(value, values, dst=0)
            return values
        finally:
            distributed.destroy_process_group()
