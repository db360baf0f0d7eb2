"""The complete description of one active-learning run; ``config.json`` holds exactly this."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import UserError
from ..fusion import FILLS, SCOPES
from ..selection import STRATEGIES
from ..train import TrainConfig

METHODS = ("prunefuse", "al", "svp", "random")
# SVP's proxy: a shallower network of the same family.
SVP_PROXY = {"preact20": "preact8", "preact14": "preact8", "preact56": "preact20", "preact110": "preact20",
             "preact164": "preact56", "vgg16": "vgg11", "resnet18": "preact20", "vgg11": "preact20",
             "lenet5": "lenet5", "preact8": "preact8"}


@dataclass
class ActiveConfig:
    method: str = "prunefuse"
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    pool_size: int | None = None  # draw the pool from the training split (None: all of it)
    test_size: int | None = None  # evaluate on the first N test samples (None: all)
    arch: str = "preact20"
    width: float = 1.0
    prune_ratio: float = 0.5
    importance: str = "l2"
    prune_steps: int = 5  # the authors' Torch-Pruning setting
    selection: str = "least_confidence"
    initial: float = 0.02  # a fraction of the pool (< 1) or a count
    budgets: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5])
    eval_at: list[float] | None = None  # budgets at which the target is trained (None: the last)
    selector_epochs: int = 30
    target_epochs: int = 30
    svp_arch: str | None = None
    svp_epochs: int | None = None
    t_sync: int = 0
    fusion: bool = True
    kd: bool = True
    fill: str = "reinit"
    fusion_scope: str = "all"
    warm_start: bool = False
    seed: int = 0
    train: dict = field(default_factory=lambda: TrainConfig(schedule="onecycle").to_dict())

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"unknown method '{self.method}'; choose one of: {', '.join(METHODS)}")
        if self.selection not in STRATEGIES:
            raise UserError(f"unknown selection '{self.selection}'; choose one of: {', '.join(STRATEGIES)}")
        if not 0.0 < self.prune_ratio < 1.0:
            raise UserError(f"prune ratio {self.prune_ratio} is out of range; use a fraction in (0, 1)")
        if self.fill not in FILLS:
            raise UserError(f"unknown fill '{self.fill}'; choose one of: {', '.join(FILLS)}")
        if self.fusion_scope not in SCOPES:
            raise UserError(f"unknown fusion scope '{self.fusion_scope}'; choose one of: {', '.join(SCOPES)}")
        if self.t_sync < 0:
            raise UserError(f"t_sync must be 0 (fixed selector) or a positive number of rounds, got {self.t_sync}")
        if min(self.selector_epochs, self.target_epochs, self.svp_epochs or 1) < 1:
            raise UserError("epoch counts must be at least 1")
        if not self.budgets:
            raise UserError("give at least one budget, e.g. --budgets 0.1,0.2")
        self.train = TrainConfig.from_dict(self.train).to_dict()  # validates

    @property
    def proxy_arch(self) -> str:
        return self.svp_arch or SVP_PROXY.get(self.arch, "preact8")

    def train_config(self, epochs: int, seed: int) -> TrainConfig:
        return TrainConfig.from_dict({**self.train, "epochs": epochs, "seed": seed})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ActiveConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def to_count(value: float, pool: int, what: str) -> int:
    """A fraction of the pool (< 1) or a count (>= 1)."""
    if value <= 0:
        raise UserError(f"{what} {value} must be positive")
    count = int(round(value * pool)) if value < 1 else int(value)
    if count > pool:
        raise UserError(f"{what} {value} asks for {count} samples but the pool holds {pool}; lower it or use a "
                        "larger pool")
    return max(count, 1)


def resolve_budgets(config: ActiveConfig, pool: int) -> tuple[int, list[int], list[int]]:
    """Initial count, cumulative budget counts, and the budgets at which the target is evaluated."""
    initial = to_count(config.initial, pool, "initial set")
    budgets = [to_count(b, pool, "budget") for b in config.budgets]
    previous = initial
    for b in budgets:
        if b <= previous:
            raise UserError(f"budgets must grow past the initial set and each other (got {budgets} after "
                            f"{initial} initial samples); give cumulative budgets such as 0.1,0.2,0.3")
        previous = b
    eval_at = [to_count(b, pool, "eval budget") for b in config.eval_at] if config.eval_at else [budgets[-1]]
    unknown = sorted(set(eval_at) - set(budgets))
    if unknown:
        raise UserError(f"--eval-at {unknown} are not among the budgets {budgets}")
    return initial, budgets, eval_at
