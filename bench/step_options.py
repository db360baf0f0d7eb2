"""What a training step of a small network costs, and what each engine option buys, dense against
pruned, side by side in one run on one thread: the batch size (fixed per-step overhead), a fused SGD
step, torch.compile (inductor fuses BN + ReLU + add), bf16 autocast (AMX on recent Xeons) and
NCHW against channels_last.

    OMP_NUM_THREADS=1 python bench/step_options.py [--arch preact20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F

from common import header, interleaved_rates, pruned_family, table
from prunefuse.train import configure_threads

SHAPE = (1, 28, 28)
VARIANTS = {  # name: (batch, channels_last, fused SGD, compile, bf16)
    "batch 8": (8, True, False, False, False),
    "batch 64": (64, True, False, False, False),
    "batch 256": (256, True, False, False, False),
    "batch 64, NCHW": (64, False, False, False, False),
    "batch 64, fused SGD": (64, True, True, False, False),
    "batch 64, compile": (64, True, False, True, False),
    "batch 64, bf16": (64, True, False, False, True),
}


def step_fn(model, batch: int, channels_last: bool, fused: bool, compiled: bool, bf16: bool):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = copy.deepcopy(model).to(memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, fused=fused or None)
    run = torch.compile(model) if compiled else model
    x = torch.randn(batch, *SHAPE).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(run(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # compile and warm up outside the timing
        step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="preact20")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configure_threads()
    nets = pruned_family(args.arch, SHAPE, [(0.5, None), (0.7, None)])
    header(f"Training-step options, {args.arch} on {SHAPE}")
    fns, images = {}, {}
    for net, model in nets.items():
        for name, spec in VARIANTS.items():
            fns[(net, name)] = step_fn(model, *spec)
            images[(net, name)] = spec[0]
    rates = {k: v * images[k] for k, v in interleaved_rates(fns, 1, repeats=args.repeats).items()}  # images/s
    rows = []
    for name, spec in VARIANTS.items():
        row = {"variant": name}
        for net in nets:
            row[f"{net} img/s"] = rates[(net, name)]
            row[f"{net} ms/step"] = 1000 * spec[0] / rates[(net, name)]
        row["dense / p=0.5 time"] = rates[("p=0.5", name)] / rates[("dense", name)]
        row["dense / p=0.7 time"] = rates[("p=0.7", name)] / rates[("dense", name)]
        rows.append(row)
    table(rows)


if __name__ == "__main__":
    main()
