"""A feed-forward network whose every layer is split into one shared group and one exclusive group
per task, so running a subset of tasks computes the shared groups plus that subset's groups only.

Wiring (PAM's, and MTZ's once zipped): the shared group reads the shared group below; task t's group
reads the shared group and t's group below; t's head reads the last shared group and t's last group.
A single-task network is the same object with one task and everything in the shared group, so one
pruner, one FLOPs count and one checkpoint format serve every method."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

SHARED = "shared"


def group_name(task: int) -> str:
    return f"t{task}"


@dataclass(frozen=True)
class LayerSpec:
    kind: str  # "conv" or "linear"
    kernel: int = 1
    padding: int = 0
    bias: bool = True
    batch_norm: bool = False
    pool: int = 1  # max-pool factor after the ReLU
    flatten: bool = False  # this linear layer reads flattened conv maps


@dataclass(frozen=True)
class Plan:
    """The layer sequence of a plain feed-forward zoo model, and the input it takes."""

    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]
    global_pool: bool  # average-pool the last conv maps before the heads (VGG)

    def sides(self) -> list[tuple[int, int]]:
        """(output side before pooling, side after pooling) of every layer."""
        side, out = self.input_shape[1], []
        for spec in self.layers:
            if spec.kind == "linear":
                side = 1
            conv_side = side + 2 * spec.padding - spec.kernel + 1 if spec.kind == "conv" else 1
            side = conv_side // spec.pool
            out.append((conv_side, side))
        return out

    def to_dict(self) -> dict:
        return {"input_shape": list(self.input_shape), "layers": [asdict(s) for s in self.layers],
                "global_pool": self.global_pool}

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(tuple(d["input_shape"]), tuple(LayerSpec(**s) for s in d["layers"]), d["global_pool"])


def plan_of(model: nn.Module, arch: str, input_shape: tuple[int, int, int]) -> Plan:
    """Read the layer plan of a zoo model; only plain feed-forward models (lenet5, vgg) merge."""
    if arch == "lenet5":
        layers = (LayerSpec("conv", model.conv1.kernel_size[0], model.conv1.padding[0], pool=2),
                  LayerSpec("conv", model.conv2.kernel_size[0], model.conv2.padding[0], pool=2),
                  LayerSpec("linear", flatten=True), LayerSpec("linear"))
        return Plan(tuple(input_shape), layers, global_pool=False)
    if arch.startswith("vgg"):
        layers: list[LayerSpec] = []
        for m in model.features:
            if isinstance(m, nn.Conv2d):
                layers.append(LayerSpec("conv", m.kernel_size[0], m.padding[0], bias=m.bias is not None,
                                        batch_norm=True))
            elif isinstance(m, nn.MaxPool2d):
                last = layers[-1]
                layers[-1] = LayerSpec(last.kind, last.kernel, last.padding, last.bias, last.batch_norm, pool=2)
        return Plan(tuple(input_shape), tuple(layers), global_pool=True)
    raise UserError(f"'{arch}' cannot be merged: merging needs a plain feed-forward network; use lenet5, vgg11 "
                    "or vgg16")


def zoo_layers(model: nn.Module, arch: str) -> list[tuple[nn.Module, nn.Module | None]]:
    """(conv or linear, batch norm or None) of each hidden layer of a zoo model, in plan order."""
    if arch == "lenet5":
        return [(model.conv1, None), (model.conv2, None), (model.fc1, None), (model.fc2, None)]
    mods = list(model.features)
    return [(m, mods[i + 1]) for i, m in enumerate(mods) if isinstance(m, nn.Conv2d)]


def make_unit(spec: LayerSpec, fan_in: int, width: int) -> nn.Sequential:
    if spec.kind == "conv":
        layer: nn.Module = nn.Conv2d(fan_in, width, spec.kernel, padding=spec.padding, bias=spec.bias)
    else:
        layer = nn.Linear(fan_in, width, bias=spec.bias)
    return nn.Sequential(layer, nn.BatchNorm2d(width)) if spec.batch_norm else nn.Sequential(layer)


class GroupedNet(nn.Module):
    def __init__(self, plan: Plan, widths: list[dict[str, int]], head_sizes: list[int]):
        """``widths[l]`` maps ``"shared"`` and ``"t0"``, ``"t1"``... to that group's neuron count."""
        super().__init__()
        self.plan, self.head_sizes = plan, list(head_sizes)
        self.num_tasks = len(head_sizes)
        self.widths = [{g: int(w.get(g, 0)) for g in self.group_names()} for w in widths]
        if len(self.widths) != len(plan.layers):
            raise UserError(f"{len(widths)} layer widths for a plan of {len(plan.layers)} layers")
        if any(w[SHARED] < 1 for w in self.widths):
            raise UserError("every layer needs at least one shared neuron")
        self.gates: nn.Module | None = None  # VIB gates on every neuron, while the VIB pruner trains them
        self.units = nn.ModuleList()
        for layer, spec in enumerate(plan.layers):
            self.units.append(nn.ModuleDict({
                g: make_unit(spec, self.fan_in(layer, g), w) for g, w in self.widths[layer].items() if w > 0}))
        self.heads = nn.ModuleDict({group_name(t): nn.Linear(self.fan_in(len(plan.layers), group_name(t)), k)
                                    for t, k in enumerate(head_sizes)})

    def group_names(self) -> list[str]:
        return [SHARED] + [group_name(t) for t in range(self.num_tasks)]

    @staticmethod
    def sources(group: str) -> list[str]:
        """The groups below that ``group`` reads, in the order its input columns hold them."""
        return [SHARED] if group == SHARED else [SHARED, group]

    def columns_per_neuron(self, layer: int) -> int:
        """Input columns each neuron of layer ``layer - 1`` feeds into layer ``layer`` (flattening)."""
        if layer < len(self.plan.layers) and self.plan.layers[layer].flatten:
            return self.plan.sides()[layer - 1][1] ** 2
        return 1

    def fan_in(self, layer: int, group: str, widths: list[dict[str, int]] | None = None) -> int:
        if layer == 0:
            return self.plan.input_shape[0]
        below = (self.widths if widths is None else widths)[layer - 1]
        return sum(below[s] for s in self.sources(group)) * self.columns_per_neuron(layer)

    def spec(self) -> dict:
        return {"plan": self.plan.to_dict(), "widths": self.widths, "head_sizes": self.head_sizes}

    @classmethod
    def from_spec(cls, spec: dict) -> GroupedNet:
        return cls(Plan.from_dict(spec["plan"]), spec["widths"], spec["head_sizes"])

    def run_unit(self, layer: int, group: str, x: torch.Tensor) -> torch.Tensor:
        spec = self.plan.layers[layer]
        x = F.relu(self.units[layer][group](x))
        x = F.max_pool2d(x, spec.pool) if spec.pool > 1 else x
        return self.gates(layer, group, x) if self.gates is not None else x

    def hidden(self, x: torch.Tensor, tasks: list[int]) -> list[dict[str, torch.Tensor]]:
        """Post-ReLU, post-pool outputs of every computed group of every layer."""
        groups = [SHARED] + [group_name(t) for t in tasks]
        outputs: list[dict[str, torch.Tensor]] = []
        below: dict[str, torch.Tensor] = {}
        for layer, spec in enumerate(self.plan.layers):
            if spec.flatten:
                below = {g: torch.flatten(v, 1) for g, v in below.items()}
            current = {}
            for g in groups:
                if g not in self.units[layer]:
                    continue
                inputs = x if layer == 0 else torch.cat([below[s] for s in self.sources(g) if s in below], 1)
                current[g] = self.run_unit(layer, g, inputs)
            outputs.append(current)
            below = current
        return outputs

    def forward(self, x: torch.Tensor, tasks: list[int] | None = None) -> torch.Tensor:
        """Logits of the tasks asked for (all by default), heads side by side in task order."""
        tasks = sorted(set(tasks)) if tasks is not None else list(range(self.num_tasks))
        last = self.hidden(x, tasks)[-1]
        if self.plan.global_pool:
            last = {g: F.adaptive_avg_pool2d(v, 1) for g, v in last.items()}
        last = {g: torch.flatten(v, 1) for g, v in last.items()}
        return torch.cat([self.heads[group_name(t)](torch.cat([last[s] for s in self.sources(group_name(t))
                                                                 if s in last], 1)) for t in tasks], 1)

    def group_macs(self, widths: list[dict[str, int]] | None = None) -> dict[str, int]:
        """Multiply-accumulates of one sample per group, summed over layers, each task's head counted with
        its group; ``widths`` (default the network's own) prices a network of other widths."""
        widths = self.widths if widths is None else widths
        totals = dict.fromkeys(self.group_names(), 0)
        for layer, (spec, (conv_side, _)) in enumerate(zip(self.plan.layers, self.plan.sides(), strict=True)):
            per_output = spec.kernel ** 2 * conv_side ** 2 if spec.kind == "conv" else 1
            for g in totals:
                totals[g] += widths[layer][g] * self.fan_in(layer, g, widths) * per_output
        for t in range(self.num_tasks):
            totals[group_name(t)] += self.head_sizes[t] * self.fan_in(len(self.plan.layers), group_name(t), widths)
        return totals

    def analytic_macs(self, tasks: list[int]) -> int:
        """Multiply-accumulates of one sample on ``tasks``: the sum over the groups it computes."""
        per_group = self.group_macs()
        return per_group[SHARED] + sum(per_group[group_name(t)] for t in tasks)

    # --- structured removal of neurons (the pruner's only write path) -----------------------------
    def consumers(self, layer: int, group: str):
        """(consuming layer, offset of the group's first column, fan-in) for every layer reading ``group``
        of ``layer``: the next layer's groups that take it as a source, or the task heads."""
        nxt = self.units[layer + 1] if layer + 1 < len(self.plan.layers) else self.heads
        per = self.columns_per_neuron(layer + 1)
        below = self.widths[layer]
        for g, consumer in nxt.items():
            srcs = self.sources(g)
            if group in srcs:
                module = consumer[0] if isinstance(consumer, nn.Sequential) else consumer
                yield module, sum(below[s] for s in srcs[: srcs.index(group)]) * per, \
                    sum(below[s] for s in srcs) * per

    def remove(self, layer: int, group: str, drop: list[int]) -> None:
        """Delete neurons ``drop`` of one group, with their incoming and outgoing weights. A task's group
        may lose every neuron (its task then reads only the shared group there); the shared group may not."""
        width = self.widths[layer][group]
        dropped = set(drop)
        keep = [i for i in range(width) if i not in dropped]
        if not keep and group == SHARED:
            raise ValueError(f"cannot remove every neuron of layer {layer}'s shared group")
        per = self.columns_per_neuron(layer + 1)
        for module, offset, fan_in in list(self.consumers(layer, group)):
            cols = [c for c in range(fan_in) if not offset <= c < offset + width * per
                    or (c - offset) // per not in dropped]
            slice_in(module, torch.tensor(cols))
        if keep:
            unit = self.units[layer][group]
            slice_out(unit[0], torch.tensor(keep))
            if len(unit) > 1:
                slice_batch_norm(unit[1], torch.tensor(keep))
        else:
            del self.units[layer][group]
        self.widths[layer][group] = len(keep)

    @torch.no_grad()
    def scale_outputs(self, layer: int, group: str, factors: torch.Tensor) -> None:
        """Multiply what each neuron of a group feeds forward by its factor, folded into the consumers'
        input columns: the network then computes what it did with the neuron outputs scaled."""
        per = self.columns_per_neuron(layer + 1)
        columns = factors.repeat_interleave(per).to(next(self.parameters()).dtype)
        for module, offset, _ in self.consumers(layer, group):
            shape = [1, len(columns)] + [1] * (module.weight.dim() - 2)
            module.weight[:, offset: offset + len(columns)] *= columns.view(shape)


def slice_out(layer: nn.Module, keep: torch.Tensor) -> None:
    layer.weight = nn.Parameter(layer.weight.data[keep].clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.data[keep].clone())
    if isinstance(layer, nn.Conv2d):
        layer.out_channels = len(keep)
    else:
        layer.out_features = len(keep)


def slice_in(layer: nn.Module, keep: torch.Tensor) -> None:
    layer.weight = nn.Parameter(layer.weight.data[:, keep].clone())
    if isinstance(layer, nn.Conv2d):
        layer.in_channels = len(keep)
    else:
        layer.in_features = len(keep)


def slice_batch_norm(bn: nn.BatchNorm2d, keep: torch.Tensor) -> None:
    bn.weight = nn.Parameter(bn.weight.data[keep].clone())
    bn.bias = nn.Parameter(bn.bias.data[keep].clone())
    bn.running_mean = bn.running_mean[keep].clone()
    bn.running_var = bn.running_var[keep].clone()
    bn.num_features = len(keep)


def from_classifier(model: nn.Module, arch: str, input_shape: tuple[int, int, int]) -> GroupedNet:
    """A trained single-task zoo model as a one-task GroupedNet (everything shared), same function."""
    plan = plan_of(model, arch, input_shape)
    layers = zoo_layers(model, arch)
    net = GroupedNet(plan, [{SHARED: layer.weight.shape[0]} for layer, _ in layers], [model.classifier.out_features])
    with torch.no_grad():
        for unit, (layer, bn) in zip(net.units, layers, strict=True):
            unit[SHARED][0].load_state_dict(layer.state_dict())
            if bn is not None:
                unit[SHARED][1].load_state_dict(bn.state_dict())
        net.heads[group_name(0)].load_state_dict(model.classifier.state_dict())
    return net
