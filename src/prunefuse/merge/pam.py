"""PAM's regrouping: per layer, the pooled neurons of all single-task networks split into dropped,
shared, and exclusive to one task, by how much each task's labels depend on them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .grouped import SHARED, GroupedNet, group_name
from .mutual_info import K_NEIGHBOURS, irrelevant_neurons, mi_sum, pairwise_sq_dists, standardise

Origin = tuple[tuple[int, int], ...]  # (network, neuron index) pairs a merged neuron comes from
LabelVars = list[torch.Tensor]  # a task's discrete label variables (its attributes, or its class label)
NULL_QUANTILE = 0.95
NULL_DRAWS = 40


CONV_CELLS = 4  # a conv channel is described by its maximum in each cell of a 4 x 4 grid


def neuron_activations(net: GroupedNet, x: torch.Tensor, cells: int = CONV_CELLS) -> list[torch.Tensor]:
    """Per layer, post-ReLU activations of a single-task network: (N, width) for a linear layer, and
    (N, width, cells²) for a conv layer, each channel max-pooled to a cells x cells grid. ``cells=1`` is
    the spatial maximum the authors intended; it leaves an early edge detector nearly the same on every
    image (every image has edges), so it reads as irrelevant and is dropped, which a coarse grid avoids
    (BENCHMARKS.md, issue 9)."""
    with torch.no_grad():
        outputs = net.eval().hidden(x, [0])
    return [F.adaptive_max_pool2d(o[SHARED], cells).flatten(2) if o[SHARED].dim() == 4 else o[SHARED]
            for o in outputs]


def null_threshold(per_neuron: torch.Tensor, label_vars: LabelVars, seed: int = 0,
                   draws: int = NULL_DRAWS, k: int = K_NEIGHBOURS) -> float:
    """The MI a set of neurons reaches with the labels by chance: its 95th percentile over random sets
    (sizes 1 to all) scored against shuffled labels. A set above it carries real information."""
    g = torch.Generator().manual_seed(seed)
    m, n = per_neuron.shape[0], per_neuron.shape[1]
    values = []
    for _ in range(draws):
        size = int(torch.randint(1, m + 1, (1,), generator=g))
        pick = torch.randperm(m, generator=g)[:size]
        order = torch.randperm(n, generator=g)
        values.append(float(mi_sum(per_neuron[pick].sum(0)[None], [y[order] for y in label_vars], k)[0]))
    return float(torch.tensor(values).quantile(NULL_QUANTILE))


def task_relevance(per_neuron: torch.Tensor, task_labels: list[LabelVars]) -> torch.Tensor:
    """(tasks, neurons): each neuron's MI with each task's labels."""
    return torch.stack([mi_sum(per_neuron, y) for y in task_labels])


def own_task_margins(relevance: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """Per neuron, its MI with the task of the network it comes from minus its largest MI with any other
    task: positive for a neuron that tells more about its own task than about the rest."""
    columns = torch.arange(relevance.shape[1])
    others = relevance.clone()
    others[owner, columns] = -torch.inf
    return relevance[owner, columns] - others.max(0).values


def reserved_neurons(relevance: torch.Tensor, owner: torch.Tensor, quota: float) -> dict[int, list[int]]:
    """Per task, up to ceil(quota x its network's width) of its own network's neurons with a positive
    ``own_task_margins``, largest first: the neurons PAM keeps exclusive even when another task finds
    them relevant. ``relevance`` is (tasks, neurons) MI; ``owner`` each neuron's network."""
    if quota == 0 or relevance.shape[0] < 2:
        return {}
    margin = own_task_margins(relevance, owner)
    reserved = {}
    for t in range(relevance.shape[0]):
        mine = (owner == t).nonzero().flatten()
        ranked = mine[torch.argsort(margin[mine], descending=True, stable=True)][: math.ceil(quota * len(mine))]
        reserved[t] = [int(j) for j in ranked if margin[j] > 0]
    return reserved


def split_layer(acts: list[torch.Tensor], task_labels: list[LabelVars], alpha: float | None = None,
                seed: int = 0, quota: float = 0.0) -> tuple[dict[str, list[Origin]], list[float]]:
    """Group one layer's neurons, pooled over the networks whose activations ``acts`` holds (network t
    trained for task t). ``alpha`` is the MI (nats per label variable) a set of neurons may carry and
    still be irrelevant to a task; None sets it per task from the chance level (``null_threshold``).
    The authors' rule shares every neuron relevant to two tasks; ``quota`` (a fraction of each
    network's width) keeps that many of a network's most task-specific neurons exclusive to its task
    instead, since a shared neuron runs in every subset of tasks (``reserved_neurons``). Returns the
    groups and the thresholds used, one per task."""
    origins: list[Origin] = [((k, i),) for k, a in enumerate(acts) for i in range(a.shape[1])]
    per_neuron = pairwise_sq_dists(standardise(torch.cat(acts, 1), seed))
    thresholds = [alpha * len(y) if alpha is not None else null_threshold(per_neuron, y, seed + t)
                  for t, y in enumerate(task_labels)]
    irrelevant = [set(irrelevant_neurons(per_neuron, y, a)) for y, a in zip(task_labels, thresholds, strict=True)]
    # per task and neuron MI: a full pass over the layer, so computed only where the quota or the fallback needs it
    relevance = task_relevance(per_neuron, task_labels) if quota else None
    dropped = set.intersection(*irrelevant)
    n = len(task_labels)
    exclusive: dict[int, int] = {}
    for t in range(n):
        others = set.intersection(*(irrelevant[s] for s in range(n) if s != t))
        exclusive.update(dict.fromkeys(others - dropped, t))
    if relevance is not None:
        owner = torch.tensor([origin[0][0] for origin in origins])
        for t, neurons in reserved_neurons(relevance, owner, quota).items():
            exclusive.update({j: t for j in neurons if j not in dropped and j not in exclusive})
    groups: dict[str, list[Origin]] = {SHARED: [origins[j] for j in range(len(origins))
                                                if j not in dropped and j not in exclusive]}
    if not groups[SHARED]:  # the wiring needs one shared neuron per layer: take the most informative one
        relevance = task_relevance(per_neuron, task_labels) if relevance is None else relevance
        best = int(relevance.sum(0).argmax())
        groups[SHARED] = [origins[best]]
        exclusive.pop(best, None)
    for t in range(n):
        groups[group_name(t)] = [origins[j] for j in sorted(j for j, task in exclusive.items() if task == t)]
    return groups, thresholds


def pam_groups(singles: list[GroupedNet], x: torch.Tensor, task_labels: list[LabelVars],
               alpha: dict[str, float | None] | None = None, seed: int = 0,
               cells: int = CONV_CELLS, quota: float = 0.0) -> list[dict[str, list[Origin]]]:
    """Group every layer; ``task_labels[t]`` are task t's label variables on the calibration images
    ``x``. ``alpha`` maps ``conv`` and ``linear`` to a threshold (nats per label variable) or None for
    the chance level; ``cells`` is the grid a conv channel is max-pooled to; ``quota`` as in
    ``split_layer``."""
    alpha = {"conv": None, "linear": None, **(alpha or {})}
    per_net = [neuron_activations(net, x, cells) for net in singles]
    return [split_layer([acts[layer] for acts in per_net], task_labels, alpha[spec.kind], seed + 100 * layer,
                        quota)[0]
            for layer, spec in enumerate(singles[0].plan.layers)]
