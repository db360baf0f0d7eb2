"""Every knob of a training run in one serialisable record, so a run directory can repeat it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import UserError
from ..validation import check_choice, check_field_types, check_number, check_seed
from .runtime import resolve_device

SCHEDULES = ("piecewise", "onecycle", "cosine", "constant")
AMP_MODES = ("auto", "off", "bf16", "fp16")
KD_SCHEDULES = ("constant", "decay")


# settings added since run directories and checkpoints were first saved, at the values that keep what
# those were made with: a saved config lacking one is read with it (``io.rundir.with_defaults``)
ADDED_SINCE_SAVED = {"shuffle_tiles": False}


@dataclass
class TrainConfig:
    epochs: int = 30
    min_steps: int = 0  # train at least this many optimizer steps: small sets get more epochs
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "piecewise"
    label_smoothing: float = 0.0
    crop_padding: int | None = None  # None: 4 pixels for 28x28 and larger inputs, 1 for smaller
    flip: bool | None = None  # None: on unless the dataset holds digits
    # a grid image's labels say which items are present, not where: reordering them is a free augmentation
    shuffle_tiles: bool = False
    channels_last: bool = True
    amp: str = "auto"  # auto: bf16 (or fp16) autocast on CUDA, off on the CPU
    compile: bool = False
    sync_bn: bool = False  # under torchrun on CUDA: batch-norm statistics over the global batch
    eval_batch_size: int = 1024
    device: str = "auto"
    seed: int = 0
    kd_alpha: float = 0.5
    kd_temperature: float = 4.0
    kd_schedule: str = "constant"  # "decay": the distillation weight (1 - alpha) falls linearly to 0

    def __post_init__(self) -> None:
        check_field_types(self)
        check_number("epochs", self.epochs, 1, integer=True)
        check_number("min_steps", self.min_steps, 0, integer=True)
        check_number("batch_size", self.batch_size, 1, integer=True)
        check_number("eval_batch_size", self.eval_batch_size, 1, integer=True)
        check_number("lr", self.lr, 0, closed="neither")
        check_number("momentum", self.momentum, 0, 1, closed="left")
        check_number("weight_decay", self.weight_decay, 0)
        check_number("label_smoothing", self.label_smoothing, 0, 1, closed="left")
        if self.crop_padding is not None:
            check_number("crop_padding", self.crop_padding, 0, integer=True)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("amp", self.amp, AMP_MODES)
        check_seed("seed", self.seed)
        if self.device != "auto":  # a device this machine lacks is refused before a run starts
            resolve_device(self.device)
        check_number("kd_alpha", self.kd_alpha, 0, 1)
        check_number("kd_temperature", self.kd_temperature, 0, closed="neither")
        check_choice("kd_schedule", self.kd_schedule, KD_SCHEDULES)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        if not isinstance(d, dict):
            raise UserError(f"a training config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)
