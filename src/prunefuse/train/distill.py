"""Hinton knowledge distillation: the loss PruneFuse uses to refine the fused network, and its
per-attribute form that a merged multitask network learns its single-task teachers by."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..validation import check_number


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
            alpha: float = 0.5, temperature: float = 4.0, label_smoothing: float = 0.0) -> torch.Tensor:
    """``alpha * CE(y, z_s) + (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))``."""
    check_number("kd_alpha", alpha, 0, 1)
    check_number("kd_temperature", temperature, 0, closed="neither")
    ce = F.cross_entropy(student_logits, targets, label_smoothing=label_smoothing)
    if alpha == 1.0:
        return ce
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return alpha * ce + (1.0 - alpha) * temperature ** 2 * kl


def binary_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                   alpha: float = 0.5, temperature: float = 4.0) -> torch.Tensor:
    """Distillation for independent binary attributes: ``alpha * BCE(y, z_s) + (1 - alpha) * T^2 *
    KL(Bernoulli(σ(z_t / T)) || Bernoulli(σ(z_s / T)))``, averaged over attributes and samples."""
    check_number("kd_alpha", alpha, 0, 1)
    check_number("kd_temperature", temperature, 0, closed="neither")
    bce = F.binary_cross_entropy_with_logits(student_logits, targets.float())
    if alpha == 1.0:
        return bce
    teacher = teacher_logits.float() / temperature
    p_teacher = torch.sigmoid(teacher)
    kl = (F.binary_cross_entropy_with_logits(student_logits.float() / temperature, p_teacher)
          - F.binary_cross_entropy_with_logits(teacher, p_teacher))
    return alpha * bce + (1.0 - alpha) * temperature ** 2 * kl
