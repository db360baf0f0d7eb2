"""Mutual information between a group of neurons and a task's labels, from the kernel-density upper
bound on the entropy of a Gaussian mixture (Kolchinsky & Tracey 2017), in nats.

H(T) = d/2 + (d/2)·log(2πσ²) − mean_i log[(1/N) Σ_j exp(−‖t_i − t_j‖²/(2σ²))] and
MI(T; Y) = H(T) − Σ_v p(Y=v)·H(T | Y=v). The constant terms cancel in MI, and squared distances add
over neurons, so a candidate group's distance matrix is a sum of per-neuron ones: the greedy search
below scores every candidate at once from them."""

from __future__ import annotations

import math

import torch

NOISE_VARIANCE = 0.1


def pairwise_sq_dists(acts: torch.Tensor) -> torch.Tensor:
    """(N, M) activations -> (M, N, N): the squared distance between samples, one matrix per neuron."""
    a = acts.float().T
    return (a[:, :, None] - a[:, None, :]) ** 2


def kde_entropy_part(dists: torch.Tensor, var: float) -> torch.Tensor:
    """The data-dependent part of H(T) for (..., N, N) distance matrices: −mean_i log mean_j k_ij."""
    n = dists.shape[-1]
    return -(torch.logsumexp(-dists / (2 * var), dim=-1) - math.log(n)).mean(-1)


def mi_from_dists(dists: torch.Tensor, labels: torch.Tensor, var: float = NOISE_VARIANCE) -> torch.Tensor:
    """MI(T; Y) for (..., N, N) distance matrices of T and the N labels."""
    mi = kde_entropy_part(dists, var)
    n = len(labels)
    for v in labels.unique():
        idx = (labels == v).nonzero().squeeze(1)
        mi = mi - (len(idx) / n) * kde_entropy_part(dists[..., idx[:, None], idx[None, :]], var)
    return mi


def mutual_information(acts: torch.Tensor, labels: torch.Tensor, var: float = NOISE_VARIANCE) -> float:
    """MI between the joint activations (N, d) of d neurons and the labels (N,)."""
    acts = acts.reshape(len(acts), -1)
    return float(mi_from_dists(pairwise_sq_dists(acts).sum(0), labels, var))


def irrelevant_neurons(per_neuron: torch.Tensor, labels: torch.Tensor, alpha: float,
                       var: float = NOISE_VARIANCE) -> list[int]:
    """Greedily grow the set I of neurons irrelevant to the labels: add the neuron that keeps MI(I; Y)
    lowest, until that lowest value exceeds ``alpha``. ``per_neuron`` is (M, N, N) from
    ``pairwise_sq_dists``; returns indices in the order they joined."""
    chosen: list[int] = []
    remaining = list(range(per_neuron.shape[0]))
    current = torch.zeros_like(per_neuron[0])
    while remaining:
        scores = mi_from_dists(current + per_neuron[remaining], labels, var)
        best = int(scores.argmin())
        if float(scores[best]) > alpha:
            break
        neuron = remaining.pop(best)
        chosen.append(neuron)
        current = current + per_neuron[neuron]
    return chosen
