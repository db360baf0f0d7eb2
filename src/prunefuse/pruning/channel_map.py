"""The explicit map from every pruned layer back to the dense layer it came from.

Indices always refer to the original dense layer, whatever number of pruning passes produced the
network, so fusion and checkpoints need nothing but this map."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import UserError

KINDS = {nn.Conv2d: "conv", nn.Linear: "linear"}


def layer_kind(module: nn.Module) -> str | None:
    if isinstance(module, _BatchNorm):
        return "bn"
    return KINDS.get(type(module))


def dense_shape(module: nn.Module) -> list[int]:
    if isinstance(module, _BatchNorm):
        return [module.num_features]
    if isinstance(module, nn.Conv2d):
        return [module.out_channels, module.in_channels]
    return [module.out_features, module.in_features]


def mapped_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers a map covers: every convolution, linear layer and batch norm, by qualified name."""
    return {name: m for name, m in model.named_modules() if layer_kind(m) is not None}


@dataclass
class LayerMap:
    kind: str  # conv | linear | bn
    dense: list[int]  # [out, in] for conv and linear, [C] for bn
    out: list[int]  # kept output channels (kept entries for bn)
    inp: list[int] = field(default_factory=list)  # kept input channels (empty for bn)

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "dense": list(self.dense), "out": list(self.out)}
        if self.kind != "bn":
            d["in"] = list(self.inp)
        return d

    @classmethod
    def from_dict(cls, d: dict, name: str = "layer") -> LayerMap:
        """Read one layer's entry, refusing indices a dense layer of that shape cannot have."""
        if not isinstance(d, dict) or d.get("kind") not in ("conv", "linear", "bn"):
            raise UserError(f"channel map entry {name} is not {{kind: conv|linear|bn, dense, out, in}}")
        dense, out, inp = d.get("dense"), d.get("out"), d.get("in", [])
        sizes = [1, 1] if d["kind"] == "bn" else [2, 2]
        if not (is_int_list(dense) and len(dense) in sizes and min(dense) >= 1 and is_int_list(out)
                and is_int_list(inp)):
            raise UserError(f"channel map entry {name}: dense, out and in must be lists of integers")
        sides = [("out", out, dense[0])] + ([("in", inp, dense[1])] if d["kind"] != "bn" else [])
        for side, kept, size in sides:
            if not kept or min(kept) < 0 or max(kept) >= size:
                raise UserError(f"channel map entry {name}: kept {side} channels must be indices in 0..{size - 1} "
                                f"(at least one); the map does not belong to this network")
            if len(set(kept)) != len(kept):
                raise UserError(f"channel map entry {name}: a kept {side} channel is listed twice; the map is "
                                "damaged")
        return cls(d["kind"], list(dense), list(out), list(inp))


def is_int_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


@dataclass
class ChannelMap:
    layers: dict[str, LayerMap]
    arch: str | None = None
    ratio: float | None = None

    @classmethod
    def identity(cls, model: nn.Module, arch: str | None = None) -> ChannelMap:
        layers = {}
        for name, m in mapped_layers(model).items():
            shape = dense_shape(m)
            layers[name] = LayerMap(layer_kind(m), shape, list(range(shape[0])),
                                    list(range(shape[1])) if len(shape) > 1 else [])
        return cls(layers, arch, 0.0)

    def compose(self, later: ChannelMap) -> ChannelMap:
        """``later`` maps a network pruned from the network this map describes; the result maps it
        straight back to the original dense network."""
        if set(later.layers) != set(self.layers):
            raise UserError("cannot compose channel maps of different architectures (their layers differ)")
        layers = {}
        for name, first in self.layers.items():
            second = later.layers[name]
            layers[name] = LayerMap(first.kind, first.dense, [first.out[i] for i in second.out],
                                    [first.inp[i] for i in second.inp])
        return ChannelMap(layers, self.arch or later.arch, later.ratio)

    def kept_fraction(self) -> float:
        kept = sum(len(layer.out) for layer in self.layers.values())
        total = sum(layer.dense[0] for layer in self.layers.values())
        return kept / max(total, 1)

    def check_fits(self, dense_model: nn.Module) -> dict[str, nn.Module]:
        """The model's mapped layers, after checking they are the dense layers this map was made from."""
        layers = mapped_layers(dense_model)
        if set(layers) != set(self.layers):
            missing = sorted(set(self.layers) - set(layers))[:3]
            extra = sorted(set(layers) - set(self.layers))[:3]
            raise UserError(f"channel map (arch {self.arch}) does not fit this model: layers "
                            f"{missing or ''} {extra or ''} differ; use the architecture the map was made for")
        for name, m in layers.items():
            entry = self.layers[name]
            if entry.kind != layer_kind(m) or entry.dense != dense_shape(m):
                raise UserError(f"channel map (arch {self.arch}) does not fit this model: layer {name} is "
                                f"{layer_kind(m)} {dense_shape(m)} here but {entry.kind} {entry.dense} in the map; "
                                "use the architecture and width the map was made for")
        return layers

    def to_dict(self) -> dict:
        return {"format": "prunefuse.channel_map/1", "arch": self.arch, "ratio": self.ratio,
                "layers": {k: v.to_dict() for k, v in self.layers.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> ChannelMap:
        try:
            layers = {k: LayerMap.from_dict(v, k) for k, v in d["layers"].items()}
        except (KeyError, TypeError, AttributeError) as e:
            raise UserError(f"not a prunefuse channel map (missing {e}); pass the JSON written by 'prunefuse prune'") \
                from None
        return cls(layers, d.get("arch"), d.get("ratio"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> ChannelMap:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise UserError(f"channel map is not valid JSON ({e})") from None
