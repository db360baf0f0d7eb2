"""The one pruner every merging method is judged with: iteratively remove the least important
neurons, fine-tune, and keep the step only if every task stays within a tolerance of its single-task
network (or, with a budget, keep every step until the FLOPs reach it, retrain, and only then check).
Three ways to pick a step's neurons: ``uniform`` takes the same fraction of every group, and
``cost`` takes, across all groups, the neurons of least importance per multiply-accumulate they cost
averaged over every subset of tasks (a shared neuron runs in every subset, a task's neuron in about
half), until they cost that fraction of the network's subset-mean MACs; ``cost-all`` prices them with
all tasks running instead, so a task's neuron is as dear as a shared one. A step that breaks
the tolerance is undone and the fraction halved; the group whose removal saved the most FLOPs in it
is then tried alone, one neuron, and stops being pruned only if that fails too. A narrow conv group
loses one whole channel at a time, and unless it is stopped the same channel breaks every retry
while other layers still have slack; but stopping it on the evidence of a step that took neurons
from every group froze five-task networks' shared conv groups early, and trying it alone first
pruned PAM 18–20% further (BENCHMARKS.md, issue 9). Pruning stops once the fraction falls below a
floor. (Doubling the fraction back after a kept step pruned less: bigger steps failed more often,
and each failure costs an attempt. Undoing the halving once a failed probe has frozen the group to
blame pruned PAM 6% further on two tasks for a point of its test accuracy; more fine-tuning for a
one-neuron step before its group is frozen pruned PAM and no merging alike, 13–16% further.)
Importance is Taylor (|∂L/∂gate| of a gate on the neuron's output, averaged over batches; Molchanov
et al. 2019) or the magnitude of the neuron's incoming weights."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from ..data.batching import Normalizer, TensorBatches
from ..data.dataset import Dataset
from ..errors import UserError
from ..io.rundir import derive_seed
from ..train import TrainConfig, fit, predict
from ..validation import changed_flags
from .grouped import SHARED, GroupedNet
from .tasks import MultiTaskObjective
from .vib import vib_prune

IMPORTANCES = ("taylor", "magnitude", "vib")
ALLOCATIONS = ("uniform", "cost", "cost-all")


@dataclass
class PruneConfig:
    importance: str = "taylor"
    allocation: str = "uniform"  # how a step spreads its removals over the groups: see ALLOCATIONS
    step_fraction: float = 0.09
    tolerance: float = 0.01  # allowed drop of any task's accuracy below its single-task network
    finetune_samples: int = 12_800  # training images seen between two pruning steps
    finetune_lr: float = 0.01
    min_step_fraction: float = 0.02  # a failed step halves the fraction; below this floor pruning stops
    # pruning attempts, failed ones included; 60 let two-task networks stop on the tolerance but pruned PAM
    # only 6% further, with a test miss (BENCHMARKS.md, issue 9)
    max_steps: int = 30
    recovery_rounds: int = 2  # extra fine-tuning rounds a step gets to regain the tolerance before it is undone
    # the same for a step of one neuron, whose failure freezes its group for good; 8 pruned both PAM and no
    # merging 13-16% further on two tasks, their ratio unchanged, with PAM's test misses (BENCHMARKS.md, issue 9)
    probe_rounds: int = 2
    taylor_batches: int = 10
    # a task's group may be pruned away whole (the shared group keeps one neuron per layer). Off: on five
    # tasks it removed the tasks' conv1 channels but pruned less in all (BENCHMARKS.md, issue 9)
    empty_groups: bool = False
    vib_strength: float = 0.05  # the first penalty the VIB pruner tries; each attempt doubles or halves it
    vib_epochs: int = 4  # gate training per VIB attempt
    # prune to this fraction of the network's FLOPs with all tasks, a short fine-tune after each step and no
    # tolerance check on the way, instead of pruning to the tolerance; the check comes after ``retrain_epochs``.
    # The tolerance's short fine-tunes stopped five-task networks far above a size that trains within it
    # (BENCHMARKS.md, issue 9)
    budget: float | None = None
    retrain_epochs: int = 0  # train the pruned network this long at the single networks' rate and schedule

    def __post_init__(self) -> None:
        if self.importance not in IMPORTANCES:
            raise UserError(f"unknown importance '{self.importance}'; choose one of: {', '.join(IMPORTANCES)}")
        if self.allocation not in ALLOCATIONS:
            raise UserError(f"unknown allocation '{self.allocation}'; choose one of: {', '.join(ALLOCATIONS)}")
        if not 0 < self.step_fraction < 1:
            raise UserError(f"step fraction {self.step_fraction} is out of range; use a value in (0, 1)")
        if self.budget is None and not 0 < self.min_step_fraction <= self.step_fraction:  # no floor with a budget
            raise UserError(f"minimum step fraction {self.min_step_fraction} is out of range; use a value in "
                            f"(0, {self.step_fraction}], the step fraction")
        if not self.vib_strength > 0 or self.vib_epochs < 1:
            raise UserError("the VIB penalty must be positive and its epochs at least 1")
        changed = changed_flags(self, ("vib_strength", "vib_epochs"))
        if changed and self.importance != "vib":
            raise UserError(f"{changed[0]} shapes the VIB pruner, not {self.importance}; add --importance vib, "
                            "or drop it")
        stepwise = changed_flags(self, ("allocation", "step_fraction", "min_step_fraction", "probe_rounds"))
        if stepwise and self.importance == "vib":
            raise UserError(f"{stepwise[0]} shapes the stepwise pruners (taylor, magnitude); the VIB pruner "
                            "searches a penalty instead: drop it")
        if self.empty_groups and self.importance == "vib":
            raise UserError("--empty-groups applies to taylor and magnitude pruning; the VIB pruner keeps one "
                            "neuron per group")
        if self.budget is not None and not 0 < self.budget < 1:
            raise UserError(f"--prune-budget {self.budget} is out of range; use a fraction of the FLOPs in (0, 1)")
        if self.budget is not None and self.importance == "vib":
            raise UserError("--prune-budget applies to taylor and magnitude pruning; the VIB pruner searches a "
                            "penalty for the tolerance instead: drop one of them")
        undone = changed_flags(self, ("min_step_fraction", "max_steps", "recovery_rounds", "probe_rounds"))
        if self.budget is not None and undone:
            raise UserError(f"{undone[0]} shapes pruning to the tolerance, where failed steps are undone; with "
                            "--prune-budget no step is undone: drop it")
        if self.retrain_epochs < 0:
            raise UserError(f"--retrain-epochs {self.retrain_epochs} must be 0 or more")
        if not 0 <= self.tolerance < 1:
            raise UserError(f"tolerance {self.tolerance} is out of range; use an accuracy drop in [0, 1), e.g. 0.01")

    def to_dict(self) -> dict:
        return asdict(self)


def gate_gradients(unit: nn.Sequential) -> torch.Tensor:
    """Σ over a neuron's output parameters of w·∂L/∂w: the gradient of a gate on its output."""
    last = unit[-1]
    params = [last.weight, last.bias] if isinstance(last, nn.BatchNorm2d) else [unit[0].weight, unit[0].bias]
    total = torch.zeros(unit[0].weight.shape[0])
    for p in params:
        if p is not None and p.grad is not None:
            total += (p.detach() * p.grad.detach()).reshape(len(total), -1).sum(1).cpu()
    return total


def importance(net: GroupedNet, train: Dataset, normalizer: Normalizer, objective: MultiTaskObjective,
               config: PruneConfig, batch_size: int, seed: int) -> dict[tuple[int, str], torch.Tensor]:
    """A score per neuron of every group; lower is pruned first."""
    if config.importance == "magnitude":
        return {(layer, g): unit[0].weight.detach().reshape(unit[0].weight.shape[0], -1).norm(dim=1).cpu()
                for layer, units in enumerate(net.units) for g, unit in units.items()}
    device = next(net.parameters()).device
    scores = {(layer, g): torch.zeros(unit[0].weight.shape[0])
              for layer, units in enumerate(net.units) for g, unit in units.items()}
    batches = TensorBatches(train.images.to(device), train.labels.to(device), normalizer, batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
    net.train()
    for step, (x, y) in enumerate(batches):
        if step == config.taylor_batches:
            break
        net.zero_grad(set_to_none=True)
        objective.loss(net(x), y).backward()
        for key in scores:
            scores[key] += gate_gradients(net.units[key[0]][key[1]]).abs()
    net.zero_grad(set_to_none=True)
    return scores


Owed = dict[tuple[int, str], float]  # per group, the fraction of a neuron it still owes the pruner


def remove_measured(net: GroupedNet, picks: dict[tuple[int, str], list[int]]) -> dict[tuple[int, str], tuple[int, int]]:
    """Remove each group's picked neurons; returns, per group, how many and the multiply-accumulates
    (all tasks) that saved."""
    removals = {}
    every_task = list(range(net.num_tasks))
    macs = net.analytic_macs(every_task)
    for key, drop in picks.items():
        if drop:
            net.remove(*key, drop)
            before, macs = macs, net.analytic_macs(every_task)
            removals[key] = (len(drop), before - macs)
    return removals


def fewest_kept(group: str, empty_groups: bool) -> int:
    """Neurons the pruner leaves in a group: the wiring needs one shared neuron per layer."""
    return 1 if group == SHARED or not empty_groups else 0


def prune_step(net: GroupedNet, scores: dict[tuple[int, str], torch.Tensor], fraction: float,
               owed: Owed, empty_groups: bool = False) -> dict[tuple[int, str], tuple[int, int]]:
    """Remove fraction·width of every group's lowest-scored neurons, keeping one per group (or, with
    ``empty_groups``, one per shared group only). Only whole neurons go; each group's remainder
    carries over in ``owed`` (updated in place), so a 3-neuron group loses one neuron every few steps,
    not a third of itself at once, nor never. Every group then shrinks at the same rate whatever its
    width, which keeps the pruner fair to merges made of many narrow groups (MTZ's) and of one wide
    group (PAM's). While a group can lose a neuron, a step removes at least one: where none owes a whole
    one yet, the dues of the steps until the first does are added at once, since an empty step ended
    pruning with attempts left (BENCHMARKS.md, issue 9)."""
    kept = {key: fewest_kept(key[1], empty_groups) for key in scores}
    prunable = {key: score for key, score in scores.items() if len(score) > kept[key]}
    if not prunable:
        return {}
    rate = {key: fraction * len(score) for key, score in prunable.items()}
    due = {key: owed.get(key, 0.5) + rate[key] for key in prunable}  # starting at 0.5 rounds the first step
    while max(due.values()) < 1:
        due = {key: value + rate[key] for key, value in due.items()}
    picks = {}
    for key, score in prunable.items():
        count = min(len(score) - kept[key], math.floor(due[key]))
        owed[key] = due[key] - count
        picks[key] = torch.argsort(score)[:count].tolist()
    return remove_measured(net, picks)


def priced_macs(net: GroupedNet, widths: list[dict[str, int]] | None = None, every_subset: bool = True) -> float:
    """MACs as the cost allocation prices them: averaged over every non-empty subset of tasks (the
    shared groups run in all of them, a task's group in 2^(n-1) of the 2^n - 1), or, without
    ``every_subset``, with all tasks running, where a task's neuron costs as much as a shared one."""
    per_group = net.group_macs(widths)
    share = 2 ** (net.num_tasks - 1) / (2 ** net.num_tasks - 1) if every_subset else 1.0
    return per_group[SHARED] + share * sum(v for g, v in per_group.items() if g != SHARED)


def neuron_costs(net: GroupedNet, every_subset: bool = True) -> dict[tuple[int, str], float]:
    """What one neuron of each group costs in ``priced_macs``: its own inputs and the columns it feeds."""
    base, costs = priced_macs(net, every_subset=every_subset), {}
    for layer, widths in enumerate(net.widths):
        for group, width in widths.items():
            if width:
                fewer = [dict(w) for w in net.widths]
                fewer[layer][group] -= 1
                costs[(layer, group)] = base - priced_macs(net, fewer, every_subset)
    return costs


def per_layer_normalized(scores: dict[tuple[int, str], torch.Tensor]) -> dict[tuple[int, str], torch.Tensor]:
    """Scores divided by their layer's ℓ2 norm over all groups, so that layers compare (Molchanov et al. 2017)."""
    norms: dict[int, float] = {}
    for (layer, _), score in scores.items():
        norms[layer] = norms.get(layer, 0.0) + float((score ** 2).sum())
    return {key: score / max(math.sqrt(norms[key[0]]), 1e-12) for key, score in scores.items()}


def prune_least_per_mac(net: GroupedNet, scores: dict[tuple[int, str], torch.Tensor],
                        fraction: float, empty_groups: bool = False,
                        every_subset: bool = True) -> dict[tuple[int, str], tuple[int, int]]:
    """Remove the neurons of least score per MAC (``priced_macs``), across ``scores``' groups, in that
    order until they cost ``fraction`` of the network's priced MACs, keeping each group's best (with
    ``empty_groups``, each shared group's). The last one may overshoot the budget (a conv channel can
    be most of it): skipping what does not fit pruned less (BENCHMARKS.md, issue 9). Each neuron is
    priced alone, so two that feed each other save a little less than their sum."""
    costs = neuron_costs(net, every_subset)
    candidates = sorted((float(score[i]) / costs[key], key, int(i))
                        for key, score in scores.items()
                        for i in torch.argsort(score, descending=True)[fewest_kept(key[1], empty_groups):])
    budget, spent = fraction * priced_macs(net, every_subset=every_subset), 0.0
    picks: dict[tuple[int, str], list[int]] = {}
    for _, key, index in candidates:
        if spent >= budget:
            break
        picks.setdefault(key, []).append(index)
        spent += costs[key]
    return remove_measured(net, picks)


def step_record(step: int, fraction: float, removed: int, rounds: int, net: GroupedNet, accuracy: dict[int, float],
                reference: dict[int, float], tolerance: float) -> dict:
    """What a pruning step logs, the same for both stepwise schedules."""
    return {"step": step, "fraction": round(fraction, 4), "removed": removed, "finetune_rounds": rounds,
            "macs": net.analytic_macs(list(range(net.num_tasks))), "val_accuracy": accuracy,
            "within_tolerance": within(accuracy, reference, tolerance)}


def allocate(net: GroupedNet, scores: dict[tuple[int, str], torch.Tensor], fraction: float, owed: Owed,
             config: PruneConfig, frozen: frozenset | set = frozenset()) -> dict[tuple[int, str], tuple[int, int]]:
    """One step's removals by ``config.allocation``, ``frozen`` groups spared."""
    if config.allocation != "uniform":
        return prune_least_per_mac(net, unfrozen(per_layer_normalized(scores), frozen), fraction, config.empty_groups,
                                   every_subset=config.allocation == "cost")
    return prune_step(net, unfrozen(scores, frozen), fraction, owed, config.empty_groups)


def unfrozen(scores: dict[tuple[int, str], torch.Tensor], frozen: set) -> dict[tuple[int, str], torch.Tensor]:
    return {key: score for key, score in scores.items() if key not in frozen}


def task_accuracy(net: GroupedNet, data: Dataset, normalizer: Normalizer, objective: MultiTaskObjective,
                  config: TrainConfig) -> dict[int, float]:
    return objective.accuracies(predict(net, data.images, normalizer, config.eval_batch_size, False), data.labels)


def within(accuracy: dict[int, float], reference: dict[int, float], tolerance: float) -> bool:
    return all(accuracy[t] >= reference[t] - tolerance - 1e-9 for t in accuracy)


def recover(net: GroupedNet, train: Dataset, val: Dataset, normalizer: Normalizer, objective: MultiTaskObjective,
            reference: dict[int, float], config: PruneConfig, train_config: TrainConfig,
            extra_rounds: int, seed: int, teacher: nn.Module | None = None) -> tuple[dict[int, float], int]:
    """Fine-tune after a pruning step (distilling from ``teacher`` if given), up to ``extra_rounds``
    more rounds while a task is below the tolerance; returns the validation accuracies and the rounds
    used."""
    finetune = TrainConfig(**{**train_config.to_dict(), "epochs": 1, "lr": config.finetune_lr, "schedule": "constant",
                              "channels_last": False})
    for attempt in range(extra_rounds + 1):
        round_seed = derive_seed(seed, f"finetune{attempt}")
        sample = torch.randperm(len(train), generator=torch.Generator().manual_seed(round_seed))
        fit(net, train.subset(sample[: config.finetune_samples]),
            TrainConfig(**{**finetune.to_dict(), "seed": round_seed}), normalizer=normalizer, objective=objective,
            teacher=teacher, quiet=True)
        accuracy = task_accuracy(net, val, normalizer, objective, train_config)
        if within(accuracy, reference, config.tolerance):
            break
    return accuracy, attempt + 1


def vib_to_tolerance(net: GroupedNet, train: Dataset, val: Dataset, normalizer: Normalizer,
                     objective: MultiTaskObjective, reference: dict[int, float], config: PruneConfig,
                     train_config: TrainConfig, log: Callable[[dict], None] | None,
                     teacher: nn.Module | None = None) -> tuple[GroupedNet, list[dict]]:
    """VIB pruning with the penalty searched for the smallest network within the tolerance: each attempt
    prunes the input network afresh, doubling the penalty after a success and halving it after a
    failure until the two meet (a ratio below 1.5) or ``max_steps`` attempts are spent."""
    history: list[dict] = []
    accepted, best = copy.deepcopy(net), net.analytic_macs(list(range(net.num_tasks)))
    strength, passed, failed = config.vib_strength, None, None
    for step in range(1, config.max_steps + 1):
        pruned = vib_prune(net, train, normalizer, objective, strength, config.vib_epochs, train_config,
                           config.finetune_lr * 10, teacher=teacher)
        seed = derive_seed(train_config.seed, f"vib{step}")
        accuracy, rounds = recover(pruned, train, val, normalizer, objective, reference, config, train_config,
                                   config.recovery_rounds, seed, teacher)
        ok = within(accuracy, reference, config.tolerance)
        macs = pruned.analytic_macs(list(range(pruned.num_tasks)))
        record = {"step": step, "vib_strength": strength, "finetune_rounds": rounds, "macs": macs,
                  "val_accuracy": accuracy, "within_tolerance": ok, "widths": pruned.widths}
        history.append(record)
        if log:
            log(record)
        if ok and macs < best:
            accepted, best = pruned, macs
        passed, failed = (strength, failed) if ok else (passed, strength)
        if passed is not None and failed is not None:
            if max(passed, failed) / min(passed, failed) < 1.5:
                break
            strength = math.sqrt(passed * failed)
        else:
            strength = strength * 2 if ok else strength / 2
    return accepted, history


def prune_to_budget(net: GroupedNet, train: Dataset, val: Dataset, normalizer: Normalizer,
                    objective: MultiTaskObjective, reference: dict[int, float], config: PruneConfig,
                    train_config: TrainConfig, log: Callable[[dict], None] | None = None,
                    teacher: nn.Module | None = None) -> tuple[GroupedNet, list[dict]]:
    """Prune a copy step by step, each step followed by one fine-tuning round and kept whatever the
    accuracy, until its FLOPs with all tasks are at most ``config.budget`` of the input's; the last step
    asks only for what is left, so the result lands near the budget. Every step records its validation
    accuracy, whether it is within the tolerance, and its widths, which let the pruned network be
    priced while a long retraining runs; the verdict is the caller's, after retraining."""
    net = copy.deepcopy(net)
    every = list(range(net.num_tasks))
    target = math.floor(config.budget * net.analytic_macs(every))  # whole MACs: each step asks for at least one
    history: list[dict] = []
    owed: Owed = {}
    step = 0
    while (macs := net.analytic_macs(every)) > target:
        step += 1
        seed = derive_seed(train_config.seed, f"prune{step}")
        scores = importance(net, train, normalizer, objective, config, train_config.batch_size, seed)
        fraction = min(config.step_fraction, 1 - target / macs)
        removals = allocate(net, scores, fraction, owed, config)
        if not removals:  # every group is down to the neurons it keeps
            break
        accuracy, rounds = recover(net, train, val, normalizer, objective, reference, config, train_config, 0, seed,
                                   teacher)
        record = {**step_record(step, fraction, sum(c for c, _ in removals.values()), rounds, net, accuracy,
                                reference, config.tolerance), "widths": net.widths}
        history.append(record)
        if log:
            log(record)
    return net, history


def retrain(net: GroupedNet, train: Dataset, val: Dataset, normalizer: Normalizer, objective: MultiTaskObjective,
            reference: dict[int, float], config: PruneConfig, train_config: TrainConfig,
            log: Callable[[dict], None] | None = None, teacher: nn.Module | None = None,
            on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train a pruned network ``config.retrain_epochs`` epochs in place, as its single networks were
    trained (their rate and schedule), and check it against the tolerance; returns that record.
    ``on_epoch`` gets fit's record of each epoch."""
    schedule = replace(train_config, epochs=config.retrain_epochs, channels_last=False,
                       seed=derive_seed(train_config.seed, "retrain"))
    fit(net, train, schedule, normalizer=normalizer, objective=objective, teacher=teacher, quiet=True,
        on_epoch=on_epoch)
    accuracy = task_accuracy(net, val, normalizer, objective, train_config)
    record = {"retrain_epochs": config.retrain_epochs, "macs": net.analytic_macs(list(range(net.num_tasks))),
              "val_accuracy": accuracy, "within_tolerance": within(accuracy, reference, config.tolerance)}
    if log:
        log(record)
    return record


def prune_network(net: GroupedNet, train: Dataset, val: Dataset, normalizer: Normalizer,
                  objective: MultiTaskObjective, reference: dict[int, float], config: PruneConfig,
                  train_config: TrainConfig, log: Callable[[dict], None] | None = None,
                  teacher: nn.Module | None = None,
                  on_epoch: Callable[[dict], None] | None = None) -> tuple[GroupedNet, list[dict]]:
    """The pruner every method is judged with: to the tolerance (``prune_to_tolerance``, or the VIB
    search), or to ``config.budget`` (``prune_to_budget``), then ``config.retrain_epochs`` of training
    (``on_epoch`` gets each of its epochs), whose record, last in the history, says whether the
    result is within the tolerance. The input is left as it was."""
    prune = prune_to_budget if config.budget is not None else prune_to_tolerance
    pruned, history = prune(net, train, val, normalizer, objective, reference, config, train_config, log, teacher)
    if config.retrain_epochs:
        history.append(retrain(pruned, train, val, normalizer, objective, reference, config, train_config, log,
                               teacher, on_epoch))
    return pruned, history


def prune_to_tolerance(net: GroupedNet, train: Dataset, val: Dataset, normalizer: Normalizer,
                       objective: MultiTaskObjective, reference: dict[int, float], config: PruneConfig,
                       train_config: TrainConfig,
                       log: Callable[[dict], None] | None = None,
                       teacher: nn.Module | None = None) -> tuple[GroupedNet, list[dict]]:
    """Prune and fine-tune a copy, keeping each step that stays within the tolerance on ``val`` and
    backing off after one that does not; returns the last network within it (a copy of the input if
    no step was) and the per-step history. The input network is left as it was. ``teacher`` (logits
    for the objective's heads) is distilled from while fine-tuning."""
    if config.importance == "vib":
        return vib_to_tolerance(net, train, val, normalizer, objective, reference, config, train_config, log,
                                teacher)
    history: list[dict] = []
    net = copy.deepcopy(net)
    accepted = copy.deepcopy(net)
    fraction, owed, accepted_owed = config.step_fraction, {}, {}
    frozen: set[tuple[int, str]] = set()  # groups whose one-neuron step broke the tolerance: pruned no further
    probe: tuple[int, str] | None = None  # the costliest group of the last failed step, tried alone next
    for step in range(1, config.max_steps + 1):
        seed = derive_seed(train_config.seed, f"prune{step}")
        scores = importance(net, train, normalizer, objective, config, train_config.batch_size, seed)
        if probe is not None:
            removals = remove_measured(net, {probe: [int(torch.argmin(scores[probe]))]})
        else:
            removals = allocate(net, scores, fraction, owed, config, frozen)
        if not removals:  # every group is frozen or down to the neurons it keeps
            break
        removed = sum(c for c, _ in removals.values())
        decisive = removed == 1  # a probe, or a step of one neuron: if it fails, that neuron's group is to blame
        accuracy, rounds = recover(net, train, val, normalizer, objective, reference, config, train_config,
                                   config.probe_rounds if decisive else config.recovery_rounds, seed, teacher)
        record = step_record(step, fraction, removed, rounds, net, accuracy, reference, config.tolerance)
        culprit = max(removals, key=lambda k: removals[k][1])
        name = f"layer {culprit[0]} {culprit[1]}"
        if probe is not None:
            record["probe"] = name
        if not record["within_tolerance"]:
            if decisive:
                frozen.add(culprit)
                record["frozen"] = name
            else:
                record["suspect"] = name
        history.append(record)
        if log:
            log(record)
        probed, probe = probe is not None, None
        if record["within_tolerance"]:
            accepted, accepted_owed = copy.deepcopy(net), dict(owed)
            continue
        if not probed:  # a failed probe follows a failed step, which has halved the fraction already
            fraction /= 2
            if fraction < config.min_step_fraction:
                break
            if record["removed"] > 1:
                probe = culprit
        net, owed = copy.deepcopy(accepted), dict(accepted_owed)
    return accepted, history
