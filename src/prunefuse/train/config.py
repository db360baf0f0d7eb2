"""Every knob of a training run in one serialisable record, so a run directory can repeat it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import UserError

SCHEDULES = ("piecewise", "onecycle", "cosine", "constant")
AMP_MODES = ("auto", "off", "bf16", "fp16")


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "piecewise"
    label_smoothing: float = 0.0
    crop_padding: int | None = None  # None: 4 pixels for 28x28 and larger inputs, 1 for smaller
    flip: bool | None = None  # None: on unless the dataset holds digits
    channels_last: bool = True
    amp: str = "auto"  # auto: bf16 (or fp16) autocast on CUDA, off on the CPU
    compile: bool = False
    sync_bn: bool = False  # under torchrun on CUDA: batch-norm statistics over the global batch
    eval_batch_size: int = 1024
    device: str = "auto"
    seed: int = 0
    kd_alpha: float = 0.5
    kd_temperature: float = 4.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UserError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise UserError("batch sizes must be at least 1")
        if self.lr <= 0:
            raise UserError(f"learning rate must be positive, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule '{self.schedule}'; choose one of: {', '.join(SCHEDULES)}")
        if self.amp not in AMP_MODES:
            raise UserError(f"unknown amp mode '{self.amp}'; choose one of: {', '.join(AMP_MODES)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UserError(f"label smoothing {self.label_smoothing} is out of range; use [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
