"""The complete description of one active-learning run; ``config.json`` holds exactly this."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import UserError
from ..models import check_name
from ..pruning.fusion import FILLS, SCOPES
from ..pruning.structured import IMPORTANCES
from ..selection import STRATEGIES
from ..train import TrainConfig
from ..validation import check_choice, check_field_types, check_number, check_seed

METHODS = ("prunefuse", "al", "svp", "random")
# SVP's proxy: a smaller network, of the same family where the zoo has one (lenet5 and preact8 are
# their own)
SVP_PROXY = {"preact20": "preact8", "preact14": "preact8", "preact56": "preact20", "preact110": "preact20",
             "preact164": "preact56", "vgg16": "vgg11", "resnet18": "preact20", "vgg11": "preact20",
             "lenet5": "lenet5", "preact8": "preact8"}
# Fields that only shape the target phase: runs that differ in these alone select the same samples.
TARGET_FIELDS = ("eval_at", "target_epochs", "target_steps", "fusion", "kd", "fill", "fusion_scope", "test_size",
                 "curve_every", "curve_size")
TARGET_TRAIN_FIELDS = ("kd_alpha", "kd_temperature", "kd_schedule")
PRUNEFUSE_FIELDS = ("prune_ratio", "importance", "prune_steps", "round_to", "t_sync", "fusion", "kd", "fill",
                    "fusion_scope")
SELECTOR_FIELDS = ("selection", "selector_epochs", "selector_steps", "warm_start")


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
    round_to: int | None = None  # keep a multiple of this many channels per pruned layer
    selection: str = "least_confidence"
    initial: float = 0.02  # a fraction of the pool (< 1) or a count
    budgets: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5])
    eval_at: list[float] | None = None  # budgets at which the target is trained (None: the last)
    selector_epochs: int = 30
    selector_steps: int = 500  # at least this many optimizer steps per selector fit (BENCHMARKS.md, issue 7)
    target_epochs: int = 30
    target_steps: int = 500
    svp_arch: str | None = None
    svp_epochs: int | None = None
    t_sync: int = 0
    fusion: bool = True
    kd: bool = False  # the selector is a weak teacher: KD cost 0.5-1.5 points (BENCHMARKS.md, issue 7)
    fill: str = "reinit"
    fusion_scope: str = "all"
    warm_start: bool = False
    curve_every: int = 0  # evaluate the final target every N epochs for the curve (0: off)
    curve_size: int | None = None  # test images the curve is measured on (None: all)
    seed: int = 0
    # batch 64: the batch every protocol v2 figure was measured with (BENCHMARKS.md, issue 7)
    train: dict = field(default_factory=lambda: TrainConfig(batch_size=64, schedule="onecycle").to_dict())

    def __post_init__(self) -> None:
        check_field_types(self)
        check_choice("method", self.method, METHODS)
        check_choice("selection", self.selection, STRATEGIES)
        check_choice("importance", self.importance, [i for i in IMPORTANCES if i != "taylor"])
        check_number("prune_ratio", self.prune_ratio, 0, 1, closed="neither")
        check_number("prune_steps", self.prune_steps, 1, integer=True)
        if self.round_to is not None:
            check_number("round_to", self.round_to, 1, integer=True)
        check_number("width", self.width, 0, 16, closed="right")
        for name in ("arch", "svp_arch"):
            if getattr(self, name) is not None:
                check_name(getattr(self, name))
        check_choice("fill", self.fill, FILLS)
        check_choice("fusion_scope", self.fusion_scope, SCOPES)
        check_number("t_sync", self.t_sync, 0, integer=True)
        for name in ("selector_epochs", "target_epochs"):
            check_number(name, getattr(self, name), 1, integer=True)
        for name in ("selector_steps", "target_steps", "curve_every"):
            check_number(name, getattr(self, name), 0, integer=True)
        for name in ("svp_epochs", "pool_size", "test_size", "curve_size"):
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), 1, integer=True)
        check_number("initial", self.initial, 0, closed="neither")
        if not self.budgets:
            raise UserError("give at least one budget, e.g. --budgets 0.1,0.2")
        for b in [*self.budgets, *(self.eval_at or [])]:
            check_number("a budget", b, 0, closed="neither")
        check_seed("seed", self.seed)
        self.train = TrainConfig.from_dict(self.train).to_dict()  # validates

    @property
    def proxy_arch(self) -> str:
        return self.svp_arch or SVP_PROXY.get(self.arch, "preact8")

    def train_config(self, epochs: int, seed: int, min_steps: int = 0) -> TrainConfig:
        return TrainConfig.from_dict({**self.train, "epochs": epochs, "min_steps": min_steps, "seed": seed})

    def selection_settings(self) -> dict:
        """Everything that decides which samples get labeled (and the selectors that pick them)."""
        d = self.to_dict()
        target_only = set(TARGET_FIELDS) - ({"fill", "fusion_scope"} if self.t_sync else set())
        d = {k: v for k, v in d.items() if k not in target_only}
        d["train"] = {k: v for k, v in d["train"].items() if k not in TARGET_TRAIN_FIELDS}
        return d

    def unread_settings(self) -> dict[str, str]:
        """The settings this run never reads, each with why: a command line that sets one of them for
        no method that reads it is refused, so that a flag never silently does nothing."""
        unread = {}
        if self.method != "prunefuse":
            unread.update(dict.fromkeys((*PRUNEFUSE_FIELDS, *TARGET_TRAIN_FIELDS), "only prunefuse reads it"))
        else:
            syncs = 0 < self.t_sync < len(self.budgets)  # a refresh comes after round T, before the last
            if self.t_sync and not syncs:
                unread["t_sync"] = f"with {len(self.budgets)} budgets no refresh comes before the last round"
            if not self.kd:
                unread.update(dict.fromkeys(TARGET_TRAIN_FIELDS, "distillation is off"))
            if not self.fusion and not syncs:
                unread.update(dict.fromkeys(("fill", "fusion_scope"), "fusion is off"))
        if self.method != "svp":
            unread.update(dict.fromkeys(("svp_arch", "svp_epochs"), "only svp reads it"))
        elif self.svp_epochs:
            unread["selector_epochs"] = "svp trains its proxy for --svp-epochs"
        if self.method == "random":
            unread.update(dict.fromkeys(SELECTOR_FIELDS, "random labeling trains no selector"))
        if not self.curve_every:
            unread["curve_size"] = "the curve is off (--curve-every N turns it on)"
        return unread

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ActiveConfig:
        if not isinstance(d, dict):
            raise UserError(f"an active-learning config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown active-learning setting(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
        try:
            return cls(**d)
        except TypeError as e:
            raise UserError(f"active-learning config has a wrong field type ({e})") from None


def to_count(value: float, pool: int, what: str) -> int:
    """A fraction of the pool (< 1) or a count (>= 1)."""
    check_number(what, value, 0, closed="neither")
    count = int(round(value * pool)) if value < 1 else int(value)
    if count > pool:
        raise UserError(f"{what} {value:.15g} asks for {count} samples but the pool holds {pool}; lower it or use a "
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
    return initial, budgets, sorted(set(eval_at))
