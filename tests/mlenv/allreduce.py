# The real consumer of mlenv's variables: torch.distributed's env:// rendezvous reads
# MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE; nothing else is passed.
import os

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
t = torch.tensor([float(rank + 1)])
dist.all_reduce(t)
# One write per line: torchrun's workers share the launcher's stdout.
line = f"rank={rank} world={world} local_rank={os.environ['LOCAL_RANK']} sum={t.item():.0f}\n"
os.write(1, line.encode())
dist.destroy_process_group()
