"""Where selection time goes, beside the FLOPs, in one run on one thread (issue 8 of the roadmap).

1. Per stage (stem, the three residual stages, head) of PreAct-ResNet-20 on 1x28x28, dense and pruned:
   milliseconds of a training step's forward + backward, the stage's MACs and the GMAC/s it runs at.
2. One selection round through the engine, per selector: training on 1,000 labeled images for a fixed
   number of SGD steps, scoring a pool, picking the top k; the seconds of each phase and dense AL's
   over each selector's, next to the FLOPs ratio.

Every variant is timed round-robin (median of repeats), so drift in the shared machine falls on all
of them alike.

    OMP_NUM_THREADS=1 python bench/pruned_speed.py [--batch-size 64] [--steps 60] [--pool 4000]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from common import header, interleaved_rates, pruned_family, table
from prunefuse import data, models
from prunefuse.data.batching import Normalizer
from prunefuse.flops import count
from prunefuse.selection import select
from prunefuse.train import TrainConfig, configure_threads, fit, predict

SHAPE = (1, 28, 28)
STAGES = ("conv1", "layer1", "layer2", "layer3", "head")


def selectors(arch: str) -> dict[str, torch.nn.Module]:
    """Dense AL's selector, SVP's proxy and PruneFuse's at p = 0.5 and 0.7 (and 0.7 rounded to 4 and 8)."""
    family = pruned_family(arch, SHAPE, [(0.5, None), (0.7, None), (0.7, 4), (0.7, 8)])
    return {"al (dense)": family.pop("dense"), "svp (preact8)": models.create("preact8", 10, SHAPE[0], SHAPE[1]),
            **{f"prunefuse {name}": net for name, net in family.items()}}


def stage_calls(model) -> dict:
    """Each stage of a PreAct-ResNet as a callable, with the input it receives."""
    head = lambda x: model.classifier(torch.flatten(F.adaptive_avg_pool2d(F.relu(model.bn(x)), 1), 1))  # noqa: E731
    return {"conv1": model.conv1, "layer1": model.layer1, "layer2": model.layer2, "layer3": model.layer3,
            "head": head}


def stage_table(nets: dict, batch: int, repeats: int) -> list[dict]:
    """Forward + backward milliseconds and GMAC/s of every stage of every network."""
    fns, macs = {}, {}
    for name, model in nets.items():
        if not hasattr(model, "layer3"):
            continue
        model = model.to(memory_format=torch.channels_last).train()
        calls = stage_calls(model)
        x = torch.randn(batch, *SHAPE).contiguous(memory_format=torch.channels_last)
        by_module = count(model, SHAPE)["by_module"]
        for stage in STAGES:
            inp = x.detach().requires_grad_(True)
            out = calls[stage](inp)
            grad = torch.randn_like(out)
            fns[(name, stage)] = (lambda f=calls[stage], i=inp, g=grad: f(i).backward(g))
            macs[(name, stage)] = (by_module.get("classifier", 0) if stage == "head" else by_module.get(stage, 0)) // 2
            x = out.detach()
    rates = interleaved_rates(fns, 1, repeats=repeats)
    rows = []
    for (name, stage), calls_per_s in rates.items():
        ms = 1000 / calls_per_s
        rows.append({"selector": name, "stage": stage, "ms fwd+bwd": ms, "MMACs/img": macs[(name, stage)] / 1e6,
                     "GMAC/s (x3 for bwd)": 3 * macs[(name, stage)] * batch / (ms / 1000) / 1e9})
    return rows


def selection_round(model, labeled, pool: torch.Tensor, normalizer, config: TrainConfig, k: int) -> dict:
    """Seconds of each phase of one round: train from this initialisation, score the pool, select."""
    model = copy.deepcopy(model)
    start = time.perf_counter()
    fit(model, labeled, config, normalizer=normalizer, quiet=True)
    trained = time.perf_counter()
    logits = predict(model, pool, normalizer, 1024)
    scored = time.perf_counter()
    select("least_confidence", k, torch.arange(len(pool)), logits)
    return {"training": trained - start, "scoring": scored - trained, "selection": time.perf_counter() - scored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="preact20")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60, help="selector training steps per round")
    parser.add_argument("--pool", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configure_threads()
    nets = selectors(args.arch)
    header(f"Selection speed, {args.arch} on {SHAPE}, batch {args.batch_size}")
    flops = {name: count(m, SHAPE)["flops"] for name, m in nets.items()}
    print("## Per stage: a training step's forward + backward\n")
    table(stage_table(nets, args.batch_size, args.repeats))

    train = data.load("fashion-mnist", "train")
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(train), generator=g)
    labeled, pool = train.subset(order[:1000]), train.images[order[1000:1000 + args.pool]]
    normalizer = Normalizer(*train.channel_stats())
    config = TrainConfig(epochs=1, min_steps=args.steps, batch_size=args.batch_size, schedule="onecycle")
    times: dict[str, list[dict]] = {name: [] for name in nets}
    for _ in range(max(1, args.repeats // 2)):
        for name, model in nets.items():
            times[name].append(selection_round(model, labeled, pool, normalizer, config, 500))
    med = {name: {p: sorted(t[p] for t in ts)[len(ts) // 2] for p in ts[0]} for name, ts in times.items()}
    base = med["al (dense)"]
    rows = []
    for name, m in med.items():
        total = sum(m.values())
        rows.append({"selector": name, "MFLOPs/img": flops[name] / 1e6,
                     "FLOPs ratio al/x": flops["al (dense)"] / flops[name], "train s": m["training"],
                     "score s": m["scoring"], "select s": m["selection"],
                     "train ratio al/x": base["training"] / m["training"],
                     "score ratio al/x": base["scoring"] / m["scoring"],
                     "round ratio al/x": sum(base.values()) / total})
    print(f"## One selection round: {args.steps} SGD steps on 1,000 labels, scoring {args.pool} images, top 500\n")
    table(rows)


if __name__ == "__main__":
    main()
