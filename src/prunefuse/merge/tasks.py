"""Tasks as disjoint class sets of one dataset.

Label form, used everywhere in ``prunefuse.merge``: task t over classes (c_0, ..., c_{k-1}) is a
(k+1)-way classification, class c_i -> i and every class outside the task -> k ("other"). So every
image is labelled for every task, and a task network answers "which of my classes, or none"."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import UserError


def parse_class_range(text: str) -> list[int]:
    text = text.strip()
    try:
        if "-" in text:
            lo, hi = (int(v) for v in text.split("-", 1))
            return list(range(lo, hi + 1))
        return [int(v) for v in text.split("+")]
    except ValueError:
        raise UserError(f"task '{text}' must be a class range like 0-4 or a list like 1+3+7") from None


@dataclass(frozen=True)
class TaskSet:
    classes: tuple[tuple[int, ...], ...]  # one tuple of dataset classes per task

    @classmethod
    def parse(cls, text: str, num_classes: int | None = None) -> TaskSet:
        """``"0-4,5-9"`` -> two tasks; checked for emptiness, overlap and range."""
        tasks = tuple(tuple(parse_class_range(part)) for part in text.split(","))
        return cls.of(tasks, num_classes)

    @classmethod
    def of(cls, tasks, num_classes: int | None = None) -> TaskSet:
        tasks = tuple(tuple(int(c) for c in t) for t in tasks)
        if len(tasks) < 2:
            raise UserError(f"merging needs at least two tasks, got {len(tasks)}; write e.g. --tasks 0-4,5-9")
        seen: dict[int, int] = {}
        for i, t in enumerate(tasks):
            if not t:
                raise UserError(f"task {i} is empty; a range is written low-high with low <= high, e.g. 0-4")
            for c in t:
                if c < 0 or (num_classes is not None and c >= num_classes):
                    raise UserError(f"task {i} names class {c}, outside 0..{(num_classes or 1) - 1}; "
                                    "use classes the dataset has")
                if c in seen:
                    raise UserError(f"class {c} is in tasks {seen[c]} and {i}; tasks must not overlap")
                seen[c] = i
        return cls(tasks)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def head_sizes(self) -> list[int]:
        return [len(t) + 1 for t in self.classes]

    def text(self) -> str:
        return ",".join("+".join(map(str, t)) for t in self.classes)

    def labels(self, y: torch.Tensor, task: int) -> torch.Tensor:
        """Dataset labels -> task labels (index within the task, or k for 'other')."""
        table = torch.full((int(y.max()) + 1 if len(y) else 1,), len(self.classes[task]), dtype=torch.long)
        known = [c for c in self.classes[task] if c < len(table)]
        table[known] = torch.tensor([self.classes[task].index(c) for c in known], dtype=torch.long)
        return table.to(y.device)[y]

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

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sum(F.cross_entropy(z, self.tasks.labels(y, t), label_smoothing=self.label_smoothing)
                   for t, z in self.heads(logits))

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        heads = self.heads(logits)
        return sum((z.argmax(1) == self.tasks.labels(y, t)).sum() for t, z in heads) / len(heads)

    def accuracies(self, logits: torch.Tensor, y: torch.Tensor) -> dict[int, float]:
        return {t: float((z.argmax(1) == self.tasks.labels(y, t)).float().mean()) for t, z in self.heads(logits)}
