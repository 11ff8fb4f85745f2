"""Training-step throughput of the v2 generator on ONE torch thread (crops/s): forward, backward
and AdamW on synthetic input, channels_last.

    python benchmarks/bench_train_step.py SIZE BATCH HINTS      # e.g. 160 16 1

Run two at once to see two processes side by side (what train.procs = 2 does).
"""

from __future__ import annotations

import sys
import time

import torch

from vidcolor.models.generator import Generator, GeneratorConfig


def main() -> None:
    torch.set_num_threads(1)
    size, batch, hints = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
    model = Generator(GeneratorConfig(decoder_channels=(96, 64, 48), hints=hints)).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = (torch.rand(batch, 1, size, size) * 100).contiguous(memory_format=torch.channels_last)
    h = torch.zeros(batch, 3, size, size).contiguous(memory_format=torch.channels_last) if hints else None
    timed, start = 4, 0.0
    for i in range(2 + timed):  # two warm-up steps
        if i == 2:
            start = time.time()
        loss = model.head_output(x, h).float().logsumexp(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"size {size} batch {batch} hints {hints}: {batch * timed / (time.time() - start):.1f} crops/s")


if __name__ == "__main__":
    main()
