"""Where a training process runs: its device, its DDP rank and world size, and the collectives the loop needs.

Without torchrun a single process on the GPU (or the CPU); under torchrun (which sets RANK, WORLD_SIZE and
LOCAL_RANK) one process per GPU, or per CPU share with the gloo backend.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Runtime:
    """Where this process runs: device, DDP rank and world size (1 without torchrun)."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start_runtime() -> Runtime:
    """One process per GPU (or per CPU share) under torchrun, which sets RANK/WORLD_SIZE; else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Runtime(device=device, rank=rank, world_size=world_size)



def gather_rows(rows: torch.Tensor, labels: torch.Tensor, total: int, runtime: Runtime
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Undo the `keys[rank::world]` split: every rank gets all rows in the original key order."""
    size = -(-total // runtime.world_size)
    # NCCL gathers GPU tensors only; gloo takes CPU ones.
    padded_rows = torch.zeros(size, rows.shape[1], device=runtime.device)
    padded_labels = torch.full((size,), -1, dtype=torch.long, device=runtime.device)
    padded_rows[:len(rows)], padded_labels[:len(labels)] = rows.to(runtime.device), labels.to(runtime.device)
    all_rows = [torch.zeros_like(padded_rows) for _ in range(runtime.world_size)]
    all_labels = [torch.zeros_like(padded_labels) for _ in range(runtime.world_size)]
    dist.all_gather(all_rows, padded_rows)
    dist.all_gather(all_labels, padded_labels)
    interleaved_rows = torch.stack(all_rows, dim=1).reshape(-1, rows.shape[1])[:total].cpu()
    interleaved_labels = torch.stack(all_labels, dim=1).reshape(-1)[:total].cpu()
    return interleaved_rows, interleaved_labels

