"""Mutual information between a group of neurons and discrete labels, in nats, with the k-nearest-
neighbour estimator for a continuous variable and a discrete one (Ross 2014, as scikit-learn's
``mutual_info_classif``), on activations standardised per neuron.

Why not the authors' kernel-density bound (fixed σ² = 0.1 on raw activations): its value follows the
activations' scale (one pure-noise neuron scores above the conv threshold, twenty reach H(Y), and
scaling the same activations by 0.1 turns "shared" into "dropped"). The k-NN estimate is invariant to
a neuron's scale after standardisation and close to 0 for noise at any set size, so a threshold means
the same thing in every layer.

Squared distances add over neurons, so a candidate group's distance matrix is the sum of per-neuron
ones: the greedy search scores every candidate at once from them."""

from __future__ import annotations

import torch

K_NEIGHBOURS = 3


def standardise(acts: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(N, M) or (N, M, F) activations, each feature to zero mean and unit variance (a dead one to
    zeros); a tiny seeded jitter breaks the ties ReLU leaves at zero, which k-NN distances cannot rank."""
    shape = acts.shape
    acts = acts.double().reshape(len(acts), -1)
    std = acts.std(0, keepdim=True)
    z = torch.where(std > 1e-8, (acts - acts.mean(0, keepdim=True)) / std.clamp_min(1e-8), torch.zeros_like(acts))
    g = torch.Generator().manual_seed(seed)
    return (z + 1e-4 * torch.randn(z.shape, generator=g, dtype=z.dtype)).reshape(shape)


def pairwise_sq_dists(acts: torch.Tensor) -> torch.Tensor:
    """(N, M) activations, or (N, M, F) with F features per neuron -> (M, N, N): the squared distance
    between samples, one matrix per neuron (summed over its features)."""
    a = acts.float()
    a = (a[:, :, None] if a.dim() == 2 else a).permute(1, 2, 0)  # M x F x N
    out = torch.zeros(a.shape[0], a.shape[2], a.shape[2])
    for f in range(a.shape[1]):  # one feature at a time keeps memory at M x N x N
        out += (a[:, f, :, None] - a[:, f, None, :]) ** 2
    return out


def knn_mi(dists: torch.Tensor, labels: torch.Tensor, k: int = K_NEIGHBOURS) -> torch.Tensor:
    """MI(T; Y) for (..., N, N) squared-distance matrices of T and N discrete labels (Ross 2014):
    ψ(N) + ψ(k) − mean ψ(N_y) − mean ψ(m), where m counts the samples closer than each sample's k-th
    nearest neighbour of the same label. Samples whose label occurs once are left out; clipped at 0."""
    labels = labels.reshape(-1)
    counts = torch.bincount(labels - labels.min())[labels - labels.min()]
    keep = counts > 1
    if keep.sum() < 2:
        return torch.zeros(dists.shape[:-2], dtype=torch.float64)
    if not bool(keep.all()):  # copying every distance matrix is the costly part; skip it when all stay
        dists, labels, counts = dists[..., keep, :][..., keep], labels[keep], counts[keep]
    n = len(labels)
    k_i = torch.clamp(counts - 1, max=k)
    eye = torch.eye(n, dtype=torch.bool)
    same = (labels[:, None] == labels[None, :]) & ~eye
    inf = torch.tensor(float("inf"), dtype=dists.dtype)
    nearest = torch.where(same, dists, inf).topk(int(k_i.max()), dim=-1, largest=False).values  # same label
    index = (k_i - 1).view(*([1] * (dists.dim() - 2)), n, 1).expand(*dists.shape[:-1], 1)
    radius = nearest.gather(-1, index)  # each sample's distance to its k-th same-label neighbour
    m = (dists <= torch.nextafter(radius, torch.zeros_like(radius))).sum(-1)  # itself included, as scikit-learn
    digamma = torch.special.digamma
    mi = (digamma(torch.tensor(float(n), dtype=torch.float64)) + digamma(k_i.double()).mean()
          - digamma(counts.double()).mean() - digamma(m.double()).mean(-1))
    return mi.clamp_min(0.0)


def mi_sum(dists: torch.Tensor, label_vars: list[torch.Tensor], k: int = K_NEIGHBOURS) -> torch.Tensor:
    """Σ over a task's label variables (its binary attributes, or its one class label) of MI(T; Y_v)."""
    return sum(knn_mi(dists, y, k) for y in label_vars)


def mutual_information(acts: torch.Tensor, label_vars: list[torch.Tensor] | torch.Tensor,
                       k: int = K_NEIGHBOURS) -> float:
    """MI between the joint (standardised) activations (N, d) of d neurons and the labels."""
    if isinstance(label_vars, torch.Tensor):
        label_vars = [label_vars]
    return float(mi_sum(pairwise_sq_dists(standardise(acts)).sum(0), label_vars, k))


def irrelevant_neurons(per_neuron: torch.Tensor, label_vars: list[torch.Tensor], alpha: float,
                       k: int = K_NEIGHBOURS) -> list[int]:
    """Greedily grow the set I of neurons irrelevant to the labels: add the neuron that keeps MI(I; Y)
    lowest, until that lowest value exceeds ``alpha``. ``per_neuron`` is (M, N, N) from
    ``pairwise_sq_dists``; returns indices in the order they joined.

    To keep the search affordable on wide layers, a step may add the b lowest-scoring candidates at
    once when the enlarged set still scores at most ``alpha``; b doubles after such a step and falls
    back to 1 when it fails, so the set always satisfies the stopping rule the single-step search
    would."""
    chosen: list[int] = []
    remaining = list(range(per_neuron.shape[0]))
    current = torch.zeros_like(per_neuron[0])
    batch = 1
    while remaining:
        scores = mi_sum(per_neuron[remaining].add_(current), label_vars, k)  # indexing made a copy
        order = torch.argsort(scores, stable=True).tolist()
        if float(scores[order[0]]) > alpha:
            break
        take = [order[0]]
        if batch > 1:
            group = order[:batch]
            if float(mi_sum((current + per_neuron[[remaining[i] for i in group]].sum(0))[None], label_vars, k)[0]) \
                    <= alpha:
                take = group
            else:
                batch = 1
        for i in take:
            chosen.append(remaining[i])
            current = current + per_neuron[remaining[i]]
        taken = set(take)
        remaining = [r for j, r in enumerate(remaining) if j not in taken]
        batch *= 2
    return chosen
