"""Multi-Task Zipping (He et al., NeurIPS 2018), the merging baseline: layer by layer, neurons of the
networks are paired by the Hessian-weighted distance of their incoming weights and the cheapest
pairs become one shared neuron.

With H = E[x xᵀ] of a layer's input, the cost of zipping neurons a and b is ½ Δᵀ H̃ Δ, Δ = w_a − w_b,
H̃ = (H_a⁻¹ + H_b⁻¹)⁻¹, and the zipped weight w_a + H_a⁻¹ H̃ (w_b − w_a) equals (H_a + H_b)⁻¹ (H_a w_a +
H_b w_b). More than two networks are zipped onto network 0: each is paired with it, an anchor's cost
is the sum over networks, and the zipped weight is (Σ H_k)⁻¹ Σ H_k w_k.

Here zipped neurons read only zipped neurons below (the shared/exclusive wiring PAM uses), so the
weights and H cover the zipped inputs. The original retrains after every layer; this one retrains
once, jointly, after every layer is zipped."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .assemble import assemble, expand
from .grouped import SHARED, GroupedNet, group_name
from .pam import Origin

MAX_ROWS = 20_000  # input vectors per layer used for H


def layer_inputs(net: GroupedNet, x: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, the input vectors of a single-task network's conv (as unfolded patches) or linear."""
    captured: list[torch.Tensor] = []
    hooks = [unit[SHARED][0].register_forward_hook(lambda m, args, out: captured.append(args[0]))
             for unit in net.units]
    with torch.no_grad():
        net.eval().hidden(x, [0])
    for h in hooks:
        h.remove()
    rows = []
    for spec, inp in zip(net.plan.layers, captured, strict=True):
        if spec.kind == "conv":
            patches = F.unfold(inp, spec.kernel, padding=spec.padding).transpose(1, 2)
            inp = patches.reshape(-1, patches.shape[-1])
        generator = torch.Generator().manual_seed(0)
        keep = torch.randperm(len(inp), generator=generator)[:MAX_ROWS]
        rows.append(inp[keep].double())
    return rows


def hessian(inputs: torch.Tensor, with_bias: bool, damping: float = 1e-4) -> torch.Tensor:
    """E[x xᵀ] of the layer input (a constant 1 appended for the bias), damped to stay invertible."""
    if with_bias:
        inputs = torch.cat([inputs, torch.ones(len(inputs), 1, dtype=inputs.dtype)], 1)
    h = inputs.T @ inputs / len(inputs)
    return h + damping * (h.diagonal().mean() + 1e-12) * torch.eye(len(h), dtype=h.dtype)


def weight_rows(net: GroupedNet, layer: int, columns: list[int]) -> torch.Tensor:
    """Every neuron's incoming weights on ``columns`` (and its bias last), as rows."""
    module = net.units[layer][SHARED][0]
    w = module.weight.detach().double().reshape(module.weight.shape[0], -1)[:, columns]
    return torch.cat([w, module.bias.detach().double()[:, None]], 1) if module.bias is not None else w


def pair_cost(wa: torch.Tensor, wb: torch.Tensor, ha: torch.Tensor, hb: torch.Tensor) -> torch.Tensor:
    """½ Δᵀ H̃ Δ for every (row of wa, row of wb)."""
    h_tilde = torch.linalg.inv(torch.linalg.inv(ha) + torch.linalg.inv(hb))
    qa = ((wa @ h_tilde) * wa).sum(1)
    qb = ((wb @ h_tilde) * wb).sum(1)
    return 0.5 * (qa[:, None] + qb[None, :] - 2 * wa @ h_tilde @ wb.T)


def greedy_matching(cost: torch.Tensor) -> dict[int, int]:
    """Cheapest disjoint pairs first, as many as the smaller side allows: row -> column."""
    order = torch.argsort(cost.flatten()).tolist()
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    match: dict[int, int] = {}
    limit = min(cost.shape)
    for flat in order:
        r, c = divmod(flat, cost.shape[1])
        if r in used_rows or c in used_cols:
            continue
        match[r] = c
        used_rows.add(r)
        used_cols.add(c)
        if len(match) == limit:
            break
    return match


def zip_layer(weights: list[torch.Tensor], hessians: list[torch.Tensor],
              count: int) -> tuple[list[Origin], torch.Tensor]:
    """Choose ``count`` zipped neurons; returns their origins and their zipped weight rows."""
    costs = [pair_cost(weights[0], weights[k], hessians[0], hessians[k]) for k in range(1, len(weights))]
    matches = [greedy_matching(c) for c in costs]
    anchors = [a for a in range(len(weights[0])) if all(a in m for m in matches)]
    total = {a: sum(float(c[a, m[a]]) for c, m in zip(costs, matches, strict=True)) for a in anchors}
    chosen = sorted(anchors, key=lambda a: total[a])[:count]
    origins: list[Origin] = [((0, a),) + tuple((k + 1, m[a]) for k, m in enumerate(matches)) for a in chosen]
    h_sum_inv = torch.linalg.inv(sum(hessians))
    zipped = torch.stack([h_sum_inv @ sum(h @ weights[k][i] for h, (k, i) in zip(hessians, o, strict=True))
                          for o in origins]) if origins else torch.zeros(0, weights[0].shape[1], dtype=torch.float64)
    return origins, zipped


@torch.no_grad()
def mtz_merge(singles: list[GroupedNet], x: torch.Tensor, share: float) -> GroupedNet:
    """Zip every layer with ``share`` of the narrowest network's neurons shared (at least one)."""
    inputs = [layer_inputs(net, x) for net in singles]
    groups: list[dict[str, list[Origin]]] = []
    zipped_rows: list[torch.Tensor] = []
    plan = singles[0].plan
    for layer, spec in enumerate(plan.layers):
        below = None if layer == 0 else groups[-1][SHARED]
        per = spec.kernel ** 2 if spec.kind == "conv" else singles[0].columns_per_neuron(layer)
        columns = [expand([dict(o)[k] for o in below], per) if below is not None
                   else list(range(plan.input_shape[0] * per)) for k in range(len(singles))]
        hessians = [hessian(inputs[k][layer][:, columns[k]], spec.bias) for k in range(len(singles))]
        weights = [weight_rows(net, layer, columns[k]) for k, net in enumerate(singles)]
        count = max(1, round(share * min(w.shape[0] for w in weights)))
        origins, zipped = zip_layer(weights, hessians, count)
        zipped_rows.append(zipped)
        layer_groups: dict[str, list[Origin]] = {SHARED: origins}
        for k, w in enumerate(weights):
            taken = {dict(o)[k] for o in origins}
            layer_groups[group_name(k)] = [((k, i),) for i in range(w.shape[0]) if i not in taken]
        groups.append(layer_groups)
    merged = assemble(singles, groups)
    for layer, rows in enumerate(zipped_rows):
        module = merged.units[layer][SHARED][0]
        if module.bias is not None:
            module.bias.copy_(rows[:, -1])
            rows = rows[:, :-1]
        module.weight.copy_(rows.reshape(module.weight.shape))
    return merged
