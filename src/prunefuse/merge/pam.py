"""PAM's regrouping: per layer, the pooled neurons of all single-task networks split into dropped,
shared, and exclusive to one task, by how much each task's labels depend on them."""

from __future__ import annotations

import torch

from .grouped import SHARED, GroupedNet, group_name
from .mutual_info import NOISE_VARIANCE, irrelevant_neurons, mi_from_dists, pairwise_sq_dists

Origin = tuple[tuple[int, int], ...]  # (network, neuron index) pairs a merged neuron comes from

ALPHA = {"conv": 0.01, "linear": 0.05}  # the reference code's thresholds, in nats


def neuron_activations(net: GroupedNet, x: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, (N, width) post-ReLU activations of a single-task network; a conv channel is reduced
    to its spatial maximum."""
    with torch.no_grad():
        outputs = net.eval().hidden(x, [0])
    return [o[SHARED].amax(dim=(2, 3)) if o[SHARED].dim() == 4 else o[SHARED] for o in outputs]


def split_layer(acts: list[torch.Tensor], task_labels: list[torch.Tensor], alpha: float,
                var: float = NOISE_VARIANCE) -> dict[str, list[Origin]]:
    """Group one layer's neurons, pooled over the networks whose activations ``acts`` holds."""
    origins: list[Origin] = [((k, i),) for k, a in enumerate(acts) for i in range(a.shape[1])]
    per_neuron = pairwise_sq_dists(torch.cat(acts, 1))
    irrelevant = [set(irrelevant_neurons(per_neuron, y, alpha, var)) for y in task_labels]
    dropped = set.intersection(*irrelevant)
    n = len(task_labels)
    groups: dict[str, list[Origin]] = {SHARED: []}
    exclusive: dict[int, int] = {}
    for t in range(n):
        others = set.intersection(*(irrelevant[s] for s in range(n) if s != t))
        groups[group_name(t)] = [origins[j] for j in sorted(others - dropped)]
        exclusive.update(dict.fromkeys(others - dropped, t))
    groups[SHARED] = [origins[j] for j in range(len(origins)) if j not in dropped and j not in exclusive]
    if not groups[SHARED]:  # the wiring needs one shared neuron per layer: take the most informative one
        relevance = sum(mi_from_dists(per_neuron, y, var) for y in task_labels)
        best = int(relevance.argmax())
        groups[SHARED] = [origins[best]]
        if best in exclusive:
            groups[group_name(exclusive[best])].remove(origins[best])
    return groups


def pam_groups(singles: list[GroupedNet], x: torch.Tensor, task_labels: list[torch.Tensor],
               alpha: dict[str, float] | None = None, var: float = NOISE_VARIANCE) -> list[dict[str, list[Origin]]]:
    """Group every layer; ``task_labels[t]`` are task t's labels of the calibration images ``x``."""
    alpha = {**ALPHA, **(alpha or {})}
    per_net = [neuron_activations(net, x) for net in singles]
    return [split_layer([acts[layer] for acts in per_net], task_labels, alpha[spec.kind], var)
            for layer, spec in enumerate(singles[0].plan.layers)]
