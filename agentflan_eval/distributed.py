"""One process per GPU: which share of the episodes this process runs, and waiting for the others.

Launched with ``accelerate launch --multi_gpu --num_processes N -m agentflan_eval run ...`` (or
``torchrun --nproc-per-node N``), every process loads its own copy of the model on its own device,
runs every N-th unfinished episode and appends to its own shard file; the main process waits for all
shards and merges them into the run dir. A single process (the usual case) never touches
torch.distributed.

The wait at the end is a file barrier, not a collective: ranks can finish hours apart, far beyond
a process group's timeout.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def take(self, items: Sequence[T]) -> list[T]:
        """This process's share: every world_size-th item, so long and short episodes spread evenly."""
        return list(items[self.rank :: self.world_size])

    def device(self) -> str | None:
        """cuda:LOCAL_RANK when GPUs are visible; None lets the backend choose (cpu)."""
        if not self.distributed:
            return None
        import torch

        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"

    def wait_for_everyone(self) -> None:
        """A short collective barrier (start-up only), through accelerate's process group."""
        if self.distributed:
            from accelerate import PartialState

            PartialState().wait_for_everyone()

    def agree(self, value: str) -> str:
        """The main process's ``value`` in every process (a collective: start-up only)."""
        if not self.distributed:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]


def current_shard() -> Shard:
    """The shard the launcher (accelerate launch / torchrun) gave this process; one process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard()
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # cpu=True: gloo process group across CPU ranks
    return Shard(
        rank=state.process_index, world_size=state.num_processes, local_rank=state.local_process_index
    )


def done_marker(root: Path, rank: int) -> Path:
    return root / "shards" / f"rank{rank}.done"


def wait_for_markers(root: Path, world_size: int, poll_s: float = 2.0) -> None:
    """Block until every rank has written its done marker. A rank that died never does: stop the run
    and re-run the same command, which resumes (the finished episodes are in the shard files)."""
    markers = [done_marker(root, r) for r in range(world_size)]
    while not all(m.is_file() for m in markers):
        time.sleep(poll_s)
