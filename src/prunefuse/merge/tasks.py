"""Tasks of one dataset, in the two forms PAM is run on.

- **Class tasks** (single-label datasets): task t over classes (c_0, ..., c_{k-1}) is a (k+1)-way
  classification, class c_i -> i and every class outside the task -> k ("other"), so every image is
  labelled for every task. Class sets must not overlap.
- **Attribute tasks** (datasets whose images carry binary attributes, e.g. ``fashion-mnist-grid``):
  task t predicts its attributes, one logistic output each; its accuracy is the mean binary accuracy
  over them. Attribute sets may overlap, up to two tasks with the same attributes (the top end of the
  authors' relatedness experiments)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from ..errors import UserError
from ..train.objective import Objective, objective_for


def parse_range(text: str) -> list[int]:
    text = text.strip()
    try:
        if "-" in text:
            lo, hi = (int(v) for v in text.split("-", 1))
            return list(range(lo, hi + 1))
        return [int(v) for v in text.split("+")]
    except ValueError:
        raise UserError(f"task '{text}' must be a range like 0-4 or a list like 1+3+7") from None


@dataclass(frozen=True)
class TaskSet:
    classes: tuple[tuple[int, ...], ...]  # one tuple of dataset classes (or attributes) per task
    attributes: bool = False  # the tuples name binary attributes, not classes

    @classmethod
    def parse(cls, text: str, num_classes: int | None = None, attributes: bool = False) -> TaskSet:
        """``"0-4,5-9"`` -> two tasks; checked for emptiness, range and (for classes) overlap."""
        tasks = tuple(tuple(parse_range(part)) for part in text.split(","))
        return cls.of(tasks, num_classes, attributes)

    @classmethod
    def of(cls, tasks, num_classes: int | None = None, attributes: bool = False) -> TaskSet:
        tasks = tuple(tuple(int(c) for c in t) for t in tasks)
        what = "attribute" if attributes else "class"
        if len(tasks) < 2:
            raise UserError(f"merging needs at least two tasks, got {len(tasks)}; write e.g. --tasks 0-4,5-9")
        seen: dict[int, int] = {}
        for i, t in enumerate(tasks):
            if not t:
                raise UserError(f"task {i} is empty; a range is written low-high with low <= high, e.g. 0-4")
            if len(set(t)) != len(t):
                raise UserError(f"task {i} names a {what} twice; list each once")
            for c in t:
                if c < 0 or (num_classes is not None and c >= num_classes):
                    raise UserError(f"task {i} names {what} {c}, outside 0..{(num_classes or 1) - 1}; "
                                    f"use {'attributes' if attributes else 'classes'} the dataset has")
                if c in seen and not attributes:
                    raise UserError(f"class {c} is in tasks {seen[c]} and {i}; class tasks must not overlap")
                seen[c] = i
        return cls(tasks, attributes)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def head_sizes(self) -> list[int]:
        return [len(t) + (0 if self.attributes else 1) for t in self.classes]

    def text(self) -> str:
        return ",".join("+".join(map(str, t)) for t in self.classes)

    def labels(self, y: torch.Tensor, task: int) -> torch.Tensor:
        """Dataset labels -> task labels: the task's attribute columns, or the index within the task's
        classes (k for 'other')."""
        if self.attributes:
            return y[:, list(self.classes[task])]
        table = torch.full((int(y.max()) + 1 if len(y) else 1,), len(self.classes[task]), dtype=torch.long)
        known = [c for c in self.classes[task] if c < len(table)]
        table[known] = torch.tensor([self.classes[task].index(c) for c in known], dtype=torch.long)
        return table.to(y.device)[y]

    def label_variables(self, y: torch.Tensor, task: int) -> list[torch.Tensor]:
        """The discrete variables whose mutual information with a group of neurons measures the group's
        relevance to the task: each binary attribute (their MI is summed, as the authors did), or the
        task's one (k+1)-way label."""
        labels = self.labels(y, task)
        return list(labels.T) if self.attributes else [labels]

    def split_logits(self, logits: torch.Tensor, tasks: list[int] | None = None) -> list[torch.Tensor]:
        sizes = [self.head_sizes[t] for t in (tasks if tasks is not None else range(len(self)))]
        return list(torch.split(logits, sizes, dim=1))


@dataclass(frozen=True)
class MultiTaskObjective:
    """The summed task losses of a multitask network whose logits are its heads side by side;
    ``correct`` is the mean over tasks of correct answers, so train accuracy reads as usual."""

    tasks: TaskSet
    which: tuple[int, ...] | None = None  # the tasks the network's heads serve, in order (None: all)
    label_smoothing: float = 0.0

    def heads(self, logits: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        which = list(self.which) if self.which is not None else list(range(len(self.tasks)))
        return list(zip(which, self.tasks.split_logits(logits, which), strict=True))

    @cached_property
    def per_task(self) -> Objective:
        """What one head minimises: the logistic loss per attribute, or the cross-entropy over classes."""
        return objective_for(self.tasks.attributes, self.label_smoothing)

    def task_correct(self, z: torch.Tensor, y: torch.Tensor, t: int) -> torch.Tensor:
        """Per sample: 1/0 for a class task, the fraction of attributes right for an attribute task."""
        target = self.tasks.labels(y, t)
        if self.tasks.attributes:
            return ((z > 0) == target.bool()).float().mean(1)
        return (z.argmax(1) == target).float()

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sum(self.per_task.loss(z, self.tasks.labels(y, t)) for t, z in self.heads(logits))

    def distill(self, logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor, alpha: float,
                temperature: float) -> torch.Tensor:
        """Each head learns from the labels and from its own teacher's head, ``teacher_logits`` holding
        the heads side by side as ``logits`` does."""
        heads = self.heads(logits)
        teachers = self.tasks.split_logits(teacher_logits, [t for t, _ in heads])
        return sum(self.per_task.distill(z, zt, self.tasks.labels(y, t), alpha, temperature)
                   for (t, z), zt in zip(heads, teachers, strict=True))

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        heads = self.heads(logits)
        return sum(self.task_correct(z, y, t).sum() for t, z in heads) / len(heads)

    def accuracies(self, logits: torch.Tensor, y: torch.Tensor) -> dict[int, float]:
        return {t: float(self.task_correct(z, y, t).mean()) for t, z in self.heads(logits)}
