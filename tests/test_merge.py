import json
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import FASHION_DIR
from prunefuse import models
from prunefuse.cli import main
from prunefuse.data import DataSpec, Normalizer
from prunefuse.errors import UserError
from prunefuse.io import checkpoint
from prunefuse.merge import (
    GroupedNet,
    MergeConfig,
    MultiTaskObjective,
    PruneConfig,
    TaskSet,
    assemble,
    from_classifier,
    mtz_merge,
)
from prunefuse.merge.group_pruning import task_accuracy
from prunefuse.merge.grouped import Plan, plan_of
from prunefuse.merge.mtz import greedy_matching, pair_cost, zip_layer
from prunefuse.merge.mutual_info import irrelevant_neurons, mutual_information, pairwise_sq_dists, standardise
from prunefuse.merge.pam import pam_groups, split_layer
from prunefuse.merge.pipeline import run_merge
from prunefuse.merge.report import merge_tables
from prunefuse.merge.subsets import all_subsets, subset_flops
from prunefuse.train import TrainConfig

LENET_SHAPE = (1, 28, 28)


def lenet_single(seed: int, classes: int = 3) -> GroupedNet:
    torch.manual_seed(seed)
    return from_classifier(models.create("lenet5", classes, 1, 28).eval(), "lenet5", LENET_SHAPE).eval()


def grouped_lenet(seed: int = 0) -> GroupedNet:
    """Three tasks with shared and exclusive groups of different widths, one exclusive group empty."""
    torch.manual_seed(seed)
    plan = plan_of(models.create("lenet5", 2, 1, 28), "lenet5", LENET_SHAPE)
    widths = [{"shared": 3, "t0": 2, "t1": 1, "t2": 0}, {"shared": 5, "t0": 3, "t1": 0, "t2": 2},
              {"shared": 7, "t0": 4, "t1": 2, "t2": 3}, {"shared": 6, "t0": 2, "t1": 3, "t2": 1}]
    return GroupedNet(plan, widths, [3, 4, 2]).eval()


# --- tasks -----------------------------------------------------------------------------------------
def test_tasks_parse_and_label_with_other():
    tasks = TaskSet.parse("0-2,5+7", num_classes=10)
    assert tasks.classes == ((0, 1, 2), (5, 7)) and tasks.head_sizes == [4, 3]
    y = torch.tensor([0, 2, 3, 5, 7, 9])
    assert tasks.labels(y, 0).tolist() == [0, 2, 3, 3, 3, 3]
    assert tasks.labels(y, 1).tolist() == [2, 2, 2, 0, 1, 2]


@pytest.mark.parametrize("text, message", [("0-4", "at least two tasks"), ("0-4,4-9", "must not overlap"),
                                           ("0-4,7-5", "empty"), ("0-4,5-12", "outside"), ("a-b,1", "must be a range")])
def test_bad_tasks_are_refused(text, message):
    with pytest.raises(UserError, match=message):
        TaskSet.parse(text, num_classes=10)


def test_the_trunks_default_epochs_follow_the_singles_and_are_recorded_only_when_the_trunk_runs():
    config = MergeConfig(single=TrainConfig(epochs=3))
    assert config.trunk_epochs == 6 and config.to_dict()["shared_epochs"] == 6
    assert replace(config, single=TrainConfig(epochs=5)).to_dict()["shared_epochs"] == 10
    assert replace(config, shared_epochs=4).to_dict()["shared_epochs"] == 4
    assert replace(config, methods=["pam", "nomerge"]).to_dict()["shared_epochs"] is None


# --- mutual information ----------------------------------------------------------------------------
def test_mi_of_independent_variable_is_about_zero():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (1000,), generator=g)
    t = torch.rand(1000, 1, generator=g) * 0.3
    assert abs(mutual_information(t, y)) < 0.01


@pytest.mark.parametrize("classes", [2, 4])
def test_mi_of_copied_labels_is_near_the_label_entropy(classes):
    y = torch.arange(400) % classes
    t = y[:, None].float() * 10 + torch.rand(400, 1, generator=torch.Generator().manual_seed(0))
    assert mutual_information(t, y) == pytest.approx(math.log(classes), abs=0.05)


def test_mi_matches_scikit_learn_and_ignores_the_scale():
    from sklearn.feature_selection import mutual_info_classif

    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 3, (300,), generator=g)
    t = y[:, None].double() + torch.randn(300, 1, generator=g, dtype=torch.float64)
    ours = mutual_information(t, y)
    assert ours == pytest.approx(float(mutual_info_classif(((t - t.mean()) / t.std()).numpy(), y.numpy(),
                                                           n_neighbors=3, random_state=0)[0]), abs=0.01)
    for scale in (0.01, 100.0):
        assert mutual_information(t * scale, y) == pytest.approx(ours, abs=1e-6)


def layer_with_known_relevance(scale: float = 1.0):
    """Two tasks with independent binary labels; per network 9 noise neurons at three scales, and one
    neuron copying task 0's label (net 0), task 1's (net 1), and one feeding both (net 1)."""
    g = torch.Generator().manual_seed(0)
    n = 256
    y0, y1 = (torch.rand(n, generator=g) > 0.5).long(), (torch.rand(n, generator=g) > 0.5).long()

    def noise():
        return torch.relu(torch.cat([torch.randn(n, 3, generator=g) * s for s in (0.01, 1.0, 100.0)], 1))

    def jitter():
        return 0.2 * torch.rand(n, 1, generator=g)

    net0 = torch.cat([noise(), y0[:, None].float() + jitter()], 1)
    net1 = torch.cat([noise(), y1[:, None].float() + jitter(), (y0 + 2 * y1)[:, None].float() + jitter()], 1)
    return [net0 * scale, net1 * scale], [[y0], [y1]]


@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_grouping_drops_noise_and_separates_exclusive_from_shared_at_any_scale(scale):
    acts, labels = layer_with_known_relevance(scale)
    groups, thresholds = split_layer(acts, labels)
    assert groups["t0"] == [((0, 9),)] and groups["t1"] == [((1, 9),)]
    assert groups["shared"] == [((1, 10),)]
    assert all(0 < a < 0.2 for a in thresholds)


def test_exclusive_quota_keeps_each_networks_most_task_specific_neurons_exclusive():
    """Every neuron tells about both tasks, so the authors' rule shares all; a quota keeps exclusive the
    ones that tell more about their own network's task, most specific first, up to the quota."""
    g = torch.Generator().manual_seed(0)
    n = 256
    y0, y1 = (torch.rand(n, generator=g) > 0.5).long(), (torch.rand(n, generator=g) > 0.5).long()

    def mix(a, b):
        return (a * y0 + b * y1 + 0.15 * torch.randn(n, generator=g))[:, None]

    # net 0: mostly task 0, mostly task 1, task 0 less clearly; net 1: mostly task 1, both alike
    acts = [torch.cat([mix(1, 0.3), mix(0.3, 1), mix(1, 0.6)], 1), torch.cat([mix(0.3, 1), mix(1, 1)], 1)]
    labels = [[y0], [y1]]
    grouped = {q: split_layer(acts, labels, quota=q)[0] for q in (0, 0.3, 1)}
    assert len(grouped[0]["shared"]) == 5 and grouped[0]["t0"] == grouped[0]["t1"] == []
    assert grouped[0.3] == {"shared": [((0, 1),), ((0, 2),), ((1, 1),)], "t0": [((0, 0),)], "t1": [((1, 0),)]}
    assert grouped[1] == {"shared": [((0, 1),), ((1, 1),)], "t0": [((0, 0),), ((0, 2),)], "t1": [((1, 0),)]}


def test_greedy_search_keeps_informative_neurons_out_of_the_irrelevant_set():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (128,), generator=g)
    acts = torch.stack([torch.zeros(128), y.float() * 5, torch.rand(128, generator=g) * 0.01, -y.float() * 3], 1)
    chosen = irrelevant_neurons(pairwise_sq_dists(standardise(acts)), [y], alpha=0.05)
    assert sorted(chosen) == [0, 2]


def test_attribute_tasks_overlap_and_label_each_attribute():
    tasks = TaskSet.parse("0-2,2-3", num_classes=4, attributes=True)
    assert tasks.head_sizes == [3, 2]
    y = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1]])
    assert tasks.labels(y, 1).tolist() == [[1, 0], [0, 1]]
    assert [v.tolist() for v in tasks.label_variables(y, 0)] == [[1, 0], [0, 1], [1, 0]]
    objective = MultiTaskObjective(tasks)
    logits = torch.tensor([[5.0, -5.0, 5.0, 5.0, 5.0], [-5.0, 5.0, -5.0, -5.0, 5.0]])  # one attribute wrong
    assert objective.accuracies(logits, y) == {0: 1.0, 1: 0.75}
    assert objective.loss(logits, y) > 0
    same = TaskSet.parse("0-1,0-1", attributes=True)  # the relatedness sweep's identical tasks
    assert torch.equal(same.labels(y, 0), same.labels(y, 1))
    with pytest.raises(UserError, match="class 0 is in tasks 0 and 1"):
        TaskSet.parse("0-1,0-1", num_classes=4)


def test_each_head_distils_from_its_own_teacher():
    """Multitask KD: the teacher's heads line up with the network's, in the order it serves the tasks, so
    a head matching its teacher costs nothing and a head that differs costs its own task's KD loss."""
    torch.manual_seed(0)
    for tasks, y in ((TaskSet.parse("0-1,2-4", attributes=True), torch.randint(0, 2, (6, 5))),
                     (TaskSet.parse("0-1,2-4", num_classes=6), torch.randint(0, 6, (6,)))):
        objective = MultiTaskObjective(tasks, (1, 0))  # task 1's head first
        z1, z0 = torch.randn(6, tasks.head_sizes[1]), torch.randn(6, tasks.head_sizes[0])
        logits = torch.cat([z1, z0], 1)
        assert objective.distill(logits, logits, y, 0.0, 2.0).item() == pytest.approx(0.0, abs=1e-6)
        task0_only = objective.per_task.distill(z0, 2 * z0, tasks.labels(y, 0), 0.0, 2.0)
        assert task0_only > 1e-3
        assert objective.distill(logits, torch.cat([z1, 2 * z0], 1), y, 0.0, 2.0).item() == pytest.approx(
            task0_only.item())
        assert objective.distill(logits, torch.randn_like(logits), y, 1.0, 2.0).item() == pytest.approx(
            objective.loss(logits, y).item())


def test_task_teachers_put_each_single_network_where_its_head_is():
    from prunefuse.merge.teachers import TaskTeachers

    singles = [lenet_single(s) for s in range(3)]
    x = torch.randn(2, 1, 28, 28)
    teacher = TaskTeachers(singles, (2, 0))
    with torch.no_grad():
        assert torch.equal(teacher.eval()(x), torch.cat([singles[2](x), singles[0](x)], 1))
        next(teacher.parameters()).zero_()  # a copy: what training does to the teacher leaves the singles be
    assert next(singles[2].parameters()).abs().sum() > 0


def test_merge_distillation_settings_replace_the_training_ones():
    config = MergeConfig(single=TrainConfig(epochs=4, kd_temperature=4.0), distill=True)
    assert (config.single.kd_alpha, config.single.kd_temperature) == (0.5, 1.0)
    assert MergeConfig(kd_alpha=0.2).single.kd_alpha == 0.2
    with pytest.raises(UserError, match="kd_alpha"):
        MergeConfig(kd_alpha=1.5)


def test_grids_hold_four_items_and_mark_their_classes():
    from prunefuse.data.grid import compose_grids

    items = torch.arange(8, dtype=torch.uint8).view(8, 1, 1, 1).expand(8, 1, 2, 2).contiguous()
    images, present = compose_grids(items, torch.tensor([0, 1, 2, 3, 0, 0, 1, 1]), 4,
                                    torch.Generator().manual_seed(0))
    assert images.shape == (2, 1, 4, 4) and present.shape == (2, 4)
    for image, row in zip(images, present, strict=True):
        tiles = {int(image[0, r, c]) for r in (0, 2) for c in (0, 2)}
        classes = {[0, 1, 2, 3, 0, 0, 1, 1][i] for i in tiles}
        assert len(tiles) == 4 and set(row.nonzero().flatten().tolist()) == classes


def test_vib_gate_training_distils_with_its_penalty():
    from prunefuse.merge.vib import Gates, PenalisedObjective

    objective = PenalisedObjective(MultiTaskObjective(TaskSet.parse("0-1,2-9"), (0,)), Gates(lenet_single(0), 0), 0.5)
    logits, y = torch.randn(4, 3), torch.tensor([0, 1, 5, 9])
    penalty = 0.5 * objective.gates.penalty().item()
    assert objective.distill(logits, logits, y, 0.0, 1.0).item() == pytest.approx(penalty, rel=1e-5)
    assert objective.distill(logits, torch.randn(4, 3), y, 1.0, 1.0).item() == pytest.approx(
        objective.loss(logits, y).item(), rel=1e-5)


def test_vib_gates_fold_exactly_and_a_strong_penalty_prunes():
    from prunefuse.data.dataset import Dataset
    from prunefuse.merge.vib import Gates, vib_prune

    net = lenet_single(0)
    x = torch.randn(6, *LENET_SHAPE)
    net.eval()
    net.gates = Gates(net)
    net.gates.eval()
    for mu in net.gates.mu.values():
        mu.data.uniform_(-1, 2)
    reference = net(x)
    gates, net.gates = net.gates, None
    for layer, units in enumerate(net.units):
        for group in units:
            keep = gates.signal(layer, group) > 0.99
            net.scale_outputs(layer, group, gates.mu[f"l{layer}_{group}"].detach() * keep)
    torch.testing.assert_close(net(x), reference, atol=1e-5, rtol=1e-4)
    g = torch.Generator().manual_seed(0)
    train = Dataset(torch.randint(0, 255, (64, *LENET_SHAPE), dtype=torch.uint8, generator=g),
                    torch.randint(0, 10, (64,), generator=g), [str(i) for i in range(10)], "toy", "train")
    tasks = TaskSet.parse("0-1,2-9")
    pruned = vib_prune(lenet_single(0), train, Normalizer([0.5], [0.25]), MultiTaskObjective(tasks, (0,)),
                       strength=50.0, epochs=3, train_config=TrainConfig(batch_size=16), lr=0.1)
    before, after = lenet_single(0).widths, pruned.widths
    assert sum(w["shared"] for w in after) < sum(w["shared"] for w in before)
    assert all(w["shared"] >= 1 for w in after)


# --- grouped network -------------------------------------------------------------------------------
def test_single_task_conversion_keeps_the_function():
    torch.manual_seed(0)
    for arch in ("lenet5", "vgg11"):
        model = models.create(arch, 4, 1, 28).eval()
        net = from_classifier(model, arch, LENET_SHAPE).eval()
        x = torch.randn(3, *LENET_SHAPE)
        torch.testing.assert_close(net(x), model(x))


def test_residual_networks_are_refused():
    with pytest.raises(UserError, match="plain feed-forward"):
        plan_of(models.create("preact20", 2, 1, 28), "preact20", LENET_SHAPE)


def test_a_subset_computes_exactly_its_groups():
    net = grouped_lenet()
    ran = []
    for layer, units in enumerate(net.units):
        for g, unit in units.items():
            unit.register_forward_hook(lambda m, i, o, key=(layer, g): ran.append(key))
    for tasks in all_subsets(3):
        ran.clear()
        net(torch.randn(2, *LENET_SHAPE), tasks)
        expected = {(layer, g) for layer, units in enumerate(net.units) for g in units
                    if g == "shared" or int(g[1:]) in tasks}
        assert set(ran) == expected and len(ran) == len(expected)


def test_subset_flops_match_the_analytic_sum_and_grow_with_the_subset():
    net = grouped_lenet()
    flops = {tuple(s): subset_flops(net, s) for s in all_subsets(3)}  # raises if counter != analytic
    assert flops[(0, 1, 2)] > flops[(0, 1)] > flops[(0,)]
    shared_only = 2 * net.analytic_macs([])
    assert flops[(0, 1, 2)] - shared_only == sum(flops[(t,)] - shared_only for t in range(3))


def test_a_task_output_does_not_depend_on_the_tasks_beside_it():
    net = grouped_lenet()
    x = torch.randn(4, *LENET_SHAPE)
    full = torch.split(net(x), net.head_sizes, dim=1)
    for t in range(3):
        torch.testing.assert_close(net(x, [t]), full[t])
    torch.testing.assert_close(net(x, [2, 0]), torch.cat([full[0], full[2]], 1))


def test_removing_neurons_keeps_counts_consistent_and_spares_other_outputs():
    net = grouped_lenet()
    x = torch.randn(2, *LENET_SHAPE)
    before = net(x, [1])
    net.remove(1, "t0", [0, 2])  # conv group feeding the flatten boundary
    net.remove(2, "t2", [1])
    torch.testing.assert_close(net(x, [1]), before)  # task 1 reads neither group
    assert net.widths[1]["t0"] == 1 and subset_flops(net, [0, 2]) == 2 * net.analytic_macs([0, 2])
    with pytest.raises(ValueError, match="shared group"):  # the wiring needs one shared neuron per layer
        net.remove(0, "shared", [0, 1, 2])


@pytest.mark.parametrize("allocation", ["uniform", "cost"])
def test_pruning_leaves_its_input_untouched(fashion_subset, allocation):
    from prunefuse.data.batching import Normalizer
    from prunefuse.merge import prune_to_tolerance
    from prunefuse.merge.tasks import MultiTaskObjective

    train, test = fashion_subset
    net = grouped_lenet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    tasks = TaskSet.parse("0-1,2-4,5")  # head sizes 3, 4, 2 as grouped_lenet has
    pruned, history = prune_to_tolerance(net, train, test, Normalizer(*train.channel_stats()),
                                         MultiTaskObjective(tasks), {0: 0.0, 1: 0.0, 2: 0.0},
                                         PruneConfig(finetune_samples=64, max_steps=2, taylor_batches=1,
                                                     allocation=allocation),
                                         TrainConfig(batch_size=32))
    assert len(history) == 2 and pruned.analytic_macs([0, 1, 2]) < net.analytic_macs([0, 1, 2])
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_pruning_goes_on_while_no_group_owes_a_whole_neuron_yet(fashion_subset):
    from prunefuse.data.batching import Normalizer
    from prunefuse.merge import prune_to_tolerance
    from prunefuse.merge.tasks import MultiTaskObjective

    train, test = fashion_subset
    net = grouped_lenet()  # at 2% its widest group (7) owes 0.64 of a neuron after one step, the rest less
    pruned, history = prune_to_tolerance(net, train, test, Normalizer(*train.channel_stats()),
                                         MultiTaskObjective(TaskSet.parse("0-1,2-4,5")), {0: 0.0, 1: 0.0, 2: 0.0},
                                         PruneConfig(step_fraction=0.02, min_step_fraction=0.02, finetune_samples=64,
                                                     max_steps=3, taylor_batches=1), TrainConfig(batch_size=32))
    assert [r["removed"] for r in history] == [1, 1, 1]  # each attempt removes a neuron; none ends pruning
    assert sum(sum(w.values()) for w in pruned.widths) == sum(sum(w.values()) for w in net.widths) - 3


def prune_against_unreachable(fashion_subset, config: PruneConfig) -> tuple[GroupedNet, GroupedNet, list[dict]]:
    """Prune a LeNet-5 (widths 6, 16, 120, 84: wide enough to be pruned at every fraction the tests use)
    against a reference no step can stay within, so every step fails; returns the input, the result and
    the history."""
    from prunefuse.data.batching import Normalizer
    from prunefuse.merge import prune_to_tolerance
    from prunefuse.merge.tasks import MultiTaskObjective

    train, test = fashion_subset
    net = lenet_single(0)
    pruned, history = prune_to_tolerance(net, train, test, Normalizer(*train.channel_stats()),
                                         MultiTaskObjective(TaskSet.parse("0-1,2-9"), (0,)), {0: 1.01}, config,
                                         TrainConfig(batch_size=32))
    return net, pruned, history


def test_a_failed_step_is_undone_and_retried_at_half_the_fraction(fashion_subset):
    net, pruned, history = prune_against_unreachable(
        fashion_subset, PruneConfig(finetune_samples=64, max_steps=10, taylor_batches=1, recovery_rounds=0,
                                    probe_rounds=0, min_step_fraction=0.02))
    # each failed step is followed by its costliest group alone; then 0.01125 falls below the floor
    assert [r["fraction"] for r in history] == [0.09, 0.045, 0.045, 0.0225, 0.0225]
    assert not any(r["within_tolerance"] for r in history)
    steps, probes = history[::2], history[1::2]
    suspects = [r["suspect"] for r in steps]
    assert len(set(suspects)) == 3 and suspects[0] == "layer 0 shared"  # conv1 channels cost the most here
    assert all("frozen" not in r and "probe" not in r for r in steps)
    # a probe removes one neuron of the suspect, and only its failure stops that group
    assert [(r["probe"], r["frozen"], r["removed"]) for r in probes] == [(s, s, 1) for s in suspects[:2]]
    # each retry starts again from the last accepted network (the input), so it removes fewer neurons
    assert steps[0]["removed"] > steps[1]["removed"] and steps[0]["macs"] < steps[1]["macs"]
    assert pruned.widths == net.widths
    assert [r["finetune_rounds"] for r in history] == [1] * 5  # no extra rounds: one round, then undone


def test_a_suspect_that_stays_within_alone_is_kept_and_not_frozen(fashion_subset, monkeypatch):
    from prunefuse.merge import group_pruning

    def within_if_one_neuron_went(pruned, *args, **kwargs):  # a fine-tuning that repairs one lost neuron only
        lost = sum(sum(w.values()) for w in start.widths) - sum(sum(w.values()) for w in pruned.widths)
        return {0: 1.01 if lost <= 1 else 0.0}, 1

    def offered_groups(net, scores, *args):
        offered.append(set(scores))
        return prune_step(net, scores, *args)

    start, offered, prune_step = lenet_single(0), [], group_pruning.prune_step
    monkeypatch.setattr(group_pruning, "recover", within_if_one_neuron_went)
    monkeypatch.setattr(group_pruning, "prune_step", offered_groups)
    net, pruned, history = prune_against_unreachable(
        fashion_subset, PruneConfig(finetune_samples=64, max_steps=10, taylor_batches=1, min_step_fraction=0.02))
    assert [r["within_tolerance"] for r in history] == [False, True, False, False, False]
    assert history[1]["probe"] == history[0]["suspect"] == "layer 0 shared" and "frozen" not in history[1]
    assert (0, "shared") in offered[1]  # the kept suspect is pruned on with the other groups
    assert history[3]["frozen"] == history[2]["suspect"]  # the second suspect, tried alone, fails
    assert pruned.widths[0] == {**net.widths[0], "shared": net.widths[0]["shared"] - 1}
    assert pruned.widths[1:] == net.widths[1:]


@pytest.mark.parametrize("allocation", ["uniform", "cost", "cost-all"])
def test_pruning_to_a_budget_goes_past_the_tolerance_and_lands_near_the_budget(fashion_subset, allocation):
    from prunefuse.data.batching import Normalizer
    from prunefuse.merge import prune_network
    from prunefuse.merge.tasks import MultiTaskObjective

    train, test = fashion_subset
    net = grouped_lenet()
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    every = [0, 1, 2]
    pruned, history = prune_network(net, train, test, Normalizer(*train.channel_stats()),
                                    MultiTaskObjective(TaskSet.parse("0-1,2-4,5")), {0: 1.01, 1: 1.01, 2: 1.01},
                                    PruneConfig(budget=0.4, step_fraction=0.2, finetune_samples=64, taylor_batches=1,
                                                allocation=allocation), TrainConfig(batch_size=32))
    # no step is within a reference no network reaches, and none is undone: each starts from the last
    assert len(history) >= 2 and not any(r["within_tolerance"] for r in history)
    macs = [r["macs"] for r in history]
    assert macs == sorted(macs, reverse=True) and macs[-1] == pruned.analytic_macs(every)
    assert history[-1]["widths"] == pruned.widths
    start = net.analytic_macs(every)
    assert 0.25 * start < macs[-1] <= 0.4 * start < macs[-2]  # it stops at the first step under the budget
    before = [start, *macs[:-1]]  # each step asks for no more than what is left of the way to the budget
    assert [r["fraction"] for r in history] == [round(min(0.2, 1 - 0.4 * start / m), 4) for m in before]
    assert all(r["finetune_rounds"] == 1 for r in history)
    assert all(torch.equal(weights[k], v) for k, v in net.state_dict().items())


def test_retraining_follows_pruning_and_gives_the_verdict(fashion_subset):
    from prunefuse.data.batching import Normalizer
    from prunefuse.merge import prune_network
    from prunefuse.merge.tasks import MultiTaskObjective

    train, test = fashion_subset
    objective, normalizer = MultiTaskObjective(TaskSet.parse("0-1,2-4,5")), Normalizer(*train.channel_stats())
    config = PruneConfig(budget=0.5, step_fraction=0.3, finetune_samples=64, taylor_batches=1)
    args = (train, test, normalizer, objective, {0: 0.0, 1: 0.0, 2: 0.0})
    pruned, history = prune_network(grouped_lenet(), *args, config, TrainConfig(batch_size=32))
    epochs = []
    retrained, again = prune_network(grouped_lenet(), *args, replace(config, retrain_epochs=2),
                                     TrainConfig(batch_size=32), on_epoch=epochs.append)
    assert again[:-1] == history and retrained.widths == pruned.widths  # the same pruning, then training
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert again[-1]["retrain_epochs"] == 2 and again[-1]["within_tolerance"]  # every task above 0
    assert again[-1]["val_accuracy"] == task_accuracy(retrained, test, normalizer, objective, TrainConfig())
    assert any(not torch.equal(a, b) for a, b in zip(retrained.state_dict().values(), pruned.state_dict().values(),
                                                     strict=True))
    _, unreachable = prune_network(grouped_lenet(), *args[:-1], {0: 1.01, 1: 0.0, 2: 0.0},
                                   replace(config, retrain_epochs=1), TrainConfig(batch_size=32))
    assert unreachable[-1]["retrain_epochs"] == 1 and not unreachable[-1]["within_tolerance"]


def test_a_budget_takes_steps_below_the_minimum_step_fraction():
    from prunefuse.cli import build_parser
    from prunefuse.cli.merge import merge_config

    args = build_parser().parse_args(["merge", "--out", "x", "--prune-budget", "0.3", "--step-fraction", "0.01"])
    assert merge_config(args).prune.step_fraction == 0.01  # the floor of failed steps' halving does not apply
    with pytest.raises(UserError, match="minimum step fraction"):
        PruneConfig(step_fraction=0.01)


def test_recovery_and_probe_rounds_from_the_command_line_bound_the_fine_tuning_of_a_failing_step(fashion_subset):
    from prunefuse.cli import build_parser
    from prunefuse.cli.merge import merge_config

    args = build_parser().parse_args(["merge", "--out", "unused", "--recovery-rounds", "3", "--probe-rounds", "5",
                                      "--max-steps", "2", "--finetune-samples", "64"])
    _, _, history = prune_against_unreachable(fashion_subset, merge_config(args).prune)
    # the round after the step, then three more; the one-neuron probe that follows gets five more
    assert [(r["removed"] > 1, r["finetune_rounds"]) for r in history] == [(True, 4), (False, 6)]


def test_every_group_shrinks_at_the_step_fraction_whatever_its_width():
    from prunefuse.merge.group_pruning import prune_step

    net, owed = grouped_lenet(), {}
    key = (2, "shared")
    removed = []
    for _ in range(3):
        macs = net.analytic_macs([0, 1, 2])
        step = prune_step(net, {key: torch.arange(float(net.widths[2]["shared"]))}, 0.3, owed)
        assert step[key][1] == macs - net.analytic_macs([0, 1, 2]) > 0  # the FLOPs saved, for the culprit
        removed.append(step[key][0])
    assert removed == [2, 2, 1]  # 0.5 + 2.1 -> 2 (0.6 left); 0.6 + 1.5 -> 2 (0.1 left); 0.1 + 0.9 -> 1
    assert net.widths[2]["shared"] == 2 and owed[key] == pytest.approx(0.0, abs=1e-9)
    narrow = grouped_lenet()  # 3- and 7-neuron groups at 2%: no whole neuron is due before 4 steps' dues
    scores, owed = {(0, "shared"): torch.arange(3.0), (2, "shared"): torch.arange(7.0)}, {}
    step = prune_step(narrow, scores, 0.02, owed)
    assert {key: count for key, (count, _) in step.items()} == {(2, "shared"): 1}
    assert owed[(0, "shared")] == pytest.approx(0.5 + 4 * 0.06) and owed[(2, "shared")] == pytest.approx(0.06)
    assert prune_step(narrow, {(0, "t1"): torch.arange(1.0)}, 0.9, owed) == {}  # one neuron is always kept


def test_with_empty_groups_a_tasks_group_is_pruned_away_whole_and_its_task_reads_the_shared_group():
    from prunefuse.merge.group_pruning import prune_least_per_mac, prune_step

    net = grouped_lenet()
    x = torch.randn(2, *net.plan.input_shape)
    with torch.no_grad():  # what fc1's t0 group feeds counts for nothing: removing it changes no output
        for module, offset, _ in net.consumers(2, "t0"):
            module.weight[:, offset: offset + net.widths[2]["t0"]] = 0
        before = net(x)
    prune_step(net, {(2, "t0"): torch.arange(4.0)}, 0.99, {})
    assert net.widths[2]["t0"] == 1 and prune_step(net, {(2, "t0"): torch.arange(1.0)}, 0.99, {}) == {}  # by default
    removed = prune_step(net, {(2, "t0"): torch.arange(1.0)}, 0.99, {}, empty_groups=True)
    assert removed[(2, "t0")][0] == 1 and net.widths[2]["t0"] == 0 and "t0" not in net.units[2]
    with torch.no_grad():
        assert torch.allclose(net(x), before, atol=1e-6)
    assert all(subset_flops(net, tasks) == 2 * net.analytic_macs(tasks) for tasks in all_subsets(3))
    restored = GroupedNet.from_spec(net.spec())
    restored.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert torch.allclose(restored(x), before, atol=1e-6)
    costly = grouped_lenet()  # the cost allocation may take a task's last neuron too, never a shared group's last
    prune_least_per_mac(costly, {(0, "t0"): torch.zeros(2), (0, "shared"): torch.zeros(3)}, 1.5, empty_groups=True)
    assert costly.widths[0]["t0"] == 0 and costly.widths[0]["shared"] == 1
    with pytest.raises(ValueError, match="shared group"):
        costly.remove(0, "shared", [0])


def test_the_priced_cost_is_the_subset_mean_or_all_tasks_and_a_neuron_costs_what_removing_it_saves():
    from prunefuse.merge.group_pruning import neuron_costs, priced_macs

    net = grouped_lenet()
    per_subset = [net.analytic_macs(s) for s in all_subsets(3)]
    assert priced_macs(net) == pytest.approx(sum(per_subset) / len(per_subset))
    assert priced_macs(net, every_subset=False) == net.analytic_macs([0, 1, 2])
    for every_subset in (True, False):
        costs = neuron_costs(net, every_subset)
        assert costs[(0, "shared")] > costs[(0, "t0")] > 0  # a shared neuron feeds every task's groups
        for key in [(0, "shared"), (1, "t2"), (2, "t0"), (3, "shared")]:
            pruned = grouped_lenet()
            before = priced_macs(pruned, every_subset=every_subset)
            pruned.remove(*key, [0])
            assert before - priced_macs(pruned, every_subset=every_subset) == pytest.approx(costs[key])
    # a task's neuron runs in 4 of the 7 subsets of three tasks, so with all tasks it costs 7/4 as much;
    # a shared neuron that feeds task groups costs less than that more
    subset_mean, all_tasks = neuron_costs(net), neuron_costs(net, every_subset=False)
    assert all_tasks[(3, "t1")] == pytest.approx(7 / 4 * subset_mean[(3, "t1")])
    assert subset_mean[(3, "shared")] < all_tasks[(3, "shared")] < 7 / 4 * subset_mean[(3, "shared")]


def test_layer_normalized_scores_have_unit_norm_per_layer():
    from prunefuse.merge.group_pruning import per_layer_normalized

    scores = per_layer_normalized({(0, "shared"): torch.tensor([3.0, 0.0]), (0, "t0"): torch.tensor([4.0]),
                                   (1, "shared"): torch.tensor([0.5, 0.5, 0.5, 0.5])})
    assert scores[(0, "shared")].tolist() == pytest.approx([0.6, 0.0])
    assert scores[(0, "t0")].item() == pytest.approx(0.8)
    assert scores[(1, "shared")].tolist() == pytest.approx([0.5] * 4)


def test_cost_allocation_removes_least_score_per_mac_until_the_budget_and_keeps_each_groups_best():
    from prunefuse.merge.group_pruning import neuron_costs, priced_macs, prune_least_per_mac

    net = grouped_lenet()
    costs, base = neuron_costs(net), priced_macs(net)
    # equal scores everywhere: the dearest neurons per MAC go first, i.e. conv1's shared channels
    scores = {(layer, g): torch.ones(w) for layer, widths in enumerate(net.widths) for g, w in widths.items() if w}
    removals = prune_least_per_mac(net, scores, 0.2)
    assert list(removals) == [(0, "shared")] and removals[(0, "shared")][0] == 1  # one channel is 25% > 20%
    assert costs[(0, "shared")] >= 0.2 * base and net.widths[0]["shared"] == 2
    # a wider budget takes the next dearest until it is spent: conv1's second shared channel, then no more
    net = grouped_lenet()
    removals = prune_least_per_mac(net, scores, 0.3)
    assert {key: count for key, (count, _) in removals.items()} == {(0, "shared"): 2}
    assert costs[(0, "shared")] < 0.3 * base <= 2 * costs[(0, "shared")]
    # a low score beats a high cost: conv1's t0 neuron 1 scores 0, so it goes before any shared channel
    net = grouped_lenet()
    scores[(0, "t0")] = torch.tensor([1.0, 0.0])
    assert list(prune_least_per_mac(net, scores, 0.01)) == [(0, "t0")]
    assert net.widths[0]["t0"] == 1
    # every group keeps its best neuron, however large the fraction: conv1's t0 keeps the neuron scoring 1
    net = grouped_lenet()
    kept = net.units[0]["t0"][0].weight[0].clone()
    prune_least_per_mac(net, scores, 1.5)
    assert all(w == min(1, original) for widths, before in zip(net.widths, grouped_lenet().widths, strict=True)
               for w, original in zip(widths.values(), before.values(), strict=True))
    assert torch.equal(net.units[0]["t0"][0].weight[0], kept)


@pytest.mark.parametrize("allocation, first", [("cost", (1, "shared")), ("cost-all", (1, "t0"))])
def test_cost_all_prices_a_tasks_neuron_with_every_task_running_so_it_goes_before_a_cheaper_shared_one(allocation,
                                                                                                      first):
    from prunefuse.merge.group_pruning import allocate

    # conv2: a shared channel saves 15295 subset-mean MACs, a t0 channel 14112; with all tasks 15484 and 24696
    net = grouped_lenet()
    scores = {(1, "shared"): torch.ones(5), (1, "t0"): torch.ones(3)}
    removals = allocate(net, scores, 0.01, {}, PruneConfig(allocation=allocation))
    assert {key: count for key, (count, _) in removals.items()} == {first: 1}


def test_merged_checkpoint_round_trip(tmp_path):
    net = grouped_lenet()
    checkpoint.save(tmp_path / "model", net, {"grouped": net.spec()})
    loaded, _ = checkpoint.load_model(tmp_path)
    x = torch.randn(2, *LENET_SHAPE)
    torch.testing.assert_close(loaded.eval()(x), net(x))
    assert Plan.from_dict(net.plan.to_dict()) == net.plan


# --- PAM -------------------------------------------------------------------------------------------
def test_merging_two_identical_networks_shares_everything():
    single = lenet_single(0)
    x = torch.randn(64, *LENET_SHAPE)
    labels = single(x).argmax(1)
    groups = pam_groups([single, single], x, [[labels], [labels]])
    assert all(layer["shared"] and not layer["t0"] and not layer["t1"] for layer in groups)
    merged = assemble([single, single], groups).eval()
    assert all(w["t0"] == 0 and w["t1"] == 0 for w in merged.widths)


def one_shared_neuron_groups(a: GroupedNet, b: GroupedNet) -> list[dict]:
    """Per layer: a's first neuron shared, a's others exclusive to task 0, all of b's to task 1."""
    return [{"shared": [((0, 0),)], "t0": [((0, i),) for i in range(1, wa["shared"])],
             "t1": [((1, i),) for i in range(wb["shared"])]} for wa, wb in zip(a.widths, b.widths, strict=True)]


def test_block_diagonal_inheritance_without_sharing_reproduces_each_network():
    a, b = lenet_single(0), lenet_single(1, classes=4)
    groups = one_shared_neuron_groups(a, b)
    merged = assemble([a, b], groups).eval()
    x = torch.randn(3, *LENET_SHAPE)
    # b's neurons are all exclusive: they read a's shared neuron through links that start at zero
    torch.testing.assert_close(merged(x, [1]), b(x))
    # a's shared neuron loses its links from a's exclusive neurons below (they break the wiring)
    assert not torch.allclose(merged(x, [0]), a(x))


def test_vgg_networks_with_batch_norm_merge_block_diagonally():
    torch.manual_seed(0)
    a, b = (from_classifier(models.create("vgg11", k, 1, 28, 0.125).eval(), "vgg11", LENET_SHAPE).eval()
            for k in (3, 4))
    for net in (a, b):  # batch-norm statistics that are not the defaults, so inheriting them matters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    groups = one_shared_neuron_groups(a, b)
    merged = assemble([a, b], groups).eval()
    x = torch.randn(3, *LENET_SHAPE)
    torch.testing.assert_close(merged(x, [1]), b(x))
    assert subset_flops(merged, [0, 1]) > subset_flops(merged, [1]) > 0  # counter == analytic sum


def test_a_network_whose_neurons_below_were_all_dropped_keeps_its_biases():
    a, b = lenet_single(0), lenet_single(1, classes=4)
    groups = [{"shared": [((0, i),) for i in range(w["shared"])], "t0": [], "t1": []} for w in a.widths]
    groups[2]["t1"] = [((1, 0),), ((1, 1),)]  # b's neurons in the layer below were all dropped
    merged = assemble([a, b], groups)
    unit = merged.units[2]["t1"][0]
    torch.testing.assert_close(unit.bias, b.units[2]["shared"][0].bias[:2])
    assert not unit.weight.any()


# --- MTZ -------------------------------------------------------------------------------------------
def test_mtz_pairs_permuted_neurons_and_zips_with_the_hessian_formula():
    g = torch.Generator().manual_seed(0)
    wa = torch.randn(4, 3, generator=g, dtype=torch.float64)
    perm = [2, 0, 3, 1]
    wb = wa[perm] + 0.01 * torch.randn(4, 3, generator=g, dtype=torch.float64)  # b's neuron j is a's perm[j]
    xa, xb = (torch.randn(200, 3, generator=g, dtype=torch.float64) * s for s in (1.0, 2.0))
    ha, hb = xa.T @ xa / 200, xb.T @ xb / 200
    match = greedy_matching(pair_cost(wa, wb, ha, hb))
    assert match == {a: perm.index(a) for a in range(4)}
    origins, zipped = zip_layer([wa, wb], [ha, hb], count=2)
    assert len(origins) == 2
    h_tilde = torch.linalg.inv(torch.linalg.inv(ha) + torch.linalg.inv(hb))
    for (_, i), (_, j) in origins:
        expected = wa[i] + torch.linalg.inv(ha) @ h_tilde @ (wb[j] - wa[i])
        torch.testing.assert_close(zipped[origins.index(((0, i), (1, j)))], expected)


def test_mtz_zipping_identical_networks_fully_is_function_preserving():
    single = lenet_single(0)
    x = torch.randn(64, *LENET_SHAPE)
    merged = mtz_merge([single, single], x, share=1.0).eval()
    assert all(w["t0"] == 0 and w["shared"] == single.widths[i]["shared"] for i, w in enumerate(merged.widths))
    torch.testing.assert_close(merged(x), torch.cat([single(x)] * 2, 1), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("budget, why", [(None, "after pruning and --retrain-epochs 40. Retrain longer, or drop it."),
                                         (0.1, "after pruning to 0.1 of the FLOPs (--prune-budget) and "
                                               "--retrain-epochs 40. Raise either.")])
def test_the_report_names_methods_that_missed_the_tolerance_and_why(budget, why):
    subsets = [{"tasks": [0], "flops": 2e6, "latency_ms": {"1": 0.1, "64": 1.0}}]

    def method(accuracy, drop, within, pruned):
        return {"subsets": subsets, "test_accuracy": {0: accuracy}, "worst_val_drop": drop,
                "within_tolerance": within, "pruned": pruned}
    results = {"tasks": [[0, 1]], "single_task": {"test_accuracy": {0: 0.9}},
               "pruning": {"budget": budget, "retrain_epochs": 40},
               "methods": {"pam": method(0.9, 0.4, True, True), "shared": method(0.7, 19.5, False, False),
                           "mtz": method(0.8, 1.25, False, True)}}
    text = merge_tables(results)
    assert "| pam | 90.00 | 0.40 | yes |" in text and "| shared | 70.00 | 19.50 | no |" in text
    assert "| mtz | 80.00 | 1.25 | no |" in text
    assert "shared: below the tolerance on the validation split even before pruning, so left unpruned" in text
    assert f"mtz: below the tolerance on the validation split {why}" in text and "pam:" not in text


def test_the_report_says_where_a_baseline_is_cheaper_than_pam():
    from prunefuse.merge.pipeline import flops_ratios

    def subsets(*flops):
        return [{"tasks": t, "flops": f, "latency_ms": {"1": 0.1}} for t, f in zip([[0], [1], [0, 1]], flops,
                                                                                   strict=True)]
    within = {"test_accuracy": {0: 0.9, 1: 0.9}, "worst_val_drop": 0.0, "within_tolerance": True}
    methods = {"pam": {"subsets": subsets(2e6, 2e6, 3e6), **within},
               "shared": {"subsets": subsets(1e6, 3e6, 3e6), **within},
               "nomerge": {"subsets": subsets(2e6, 2e6, 4e6), **within}}
    text = merge_tables({"tasks": [[0], [1]], "single_task": {"test_accuracy": {0: 0.9, 1: 0.9}}, "methods": methods,
                         "ratios": flops_ratios(methods), "pruning": {"budget": None, "retrain_epochs": 0}})
    assert "- shared is cheaper than pam on 1 of 3 subsets (single tasks: 1); most on T0, 0.50x pam's FLOPs" in text
    assert "nomerge is cheaper" not in text  # equal costs are no loss


def test_flops_ratios_against_another_reference_method():
    from prunefuse.merge.pipeline import flops_ratios

    def method(*flops):
        return {"subsets": [{"tasks": t, "flops": f} for t, f in zip([[0], [1], [0, 1]], flops, strict=True)]}
    methods = {"pam": method(2e6, 2e6, 3e6), "shared": method(1e6, 1e6, 1e6), "nomerge": method(1e6, 3e6, 4e6)}
    ratios = flops_ratios(methods, reference="shared")
    assert set(ratios) == {"pam/shared", "nomerge/shared"}
    assert ratios["nomerge/shared"] == {"all_tasks": 4.0, "mean_over_subsets": round(8 / 3, 3),
                                        "mean_over_single_tasks": 2.0, "worst_subset": 1.0}
    assert flops_ratios(methods, reference="mtz") == {}


# --- end to end ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fashion_merge(tmp_path_factory):
    if not FASHION_DIR.is_dir():
        pytest.skip("Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)")
    out = tmp_path_factory.mktemp("merge")
    config = MergeConfig(data=DataSpec("fashion-mnist", subset=1200), tasks="0-4,5-9",
                         single=TrainConfig(epochs=2, lr=0.05, schedule="cosine", batch_size=64), merge_epochs=1,
                         val_size=300, prune=PruneConfig(finetune_samples=500, max_steps=2, tolerance=0.05),
                         latency_repeats=2)
    return out, run_merge(config, out, quiet=True)


def test_merge_run_writes_results_for_every_method_and_subset(fashion_merge):
    out, _ = fashion_merge
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["methods"]) == {"pam", "nomerge", "shared", "mtz"}
    for method in saved["methods"].values():
        assert [s["tasks"] for s in method["subsets"]] == [[0], [1], [0, 1]]
        for s in method["subsets"]:
            assert s["flops"] > 0 and set(s["latency_ms"]) == {"1", "64"} and min(s["latency_ms"].values()) > 0
            assert set(s["accuracy"]) == {str(t) for t in s["tasks"]}
            assert all(0.4 < a <= 1 for a in s["accuracy"].values())
    nomerge = saved["methods"]["nomerge"]["subsets"]
    assert nomerge[2]["flops"] == nomerge[0]["flops"] + nomerge[1]["flops"]
    shared = saved["methods"]["shared"]["subsets"]
    assert shared[0]["flops"] < shared[2]["flops"] < 2 * shared[0]["flops"]  # one trunk, two small heads
    assert set(saved["ratios"]) == {"nomerge/pam", "shared/pam", "mtz/pam"}
    for name in ("config.json", "report.md", "flops_per_subset.png", "metrics.jsonl"):
        assert (out / name).is_file()
    saved_config = json.loads((out / "config.json").read_text())["config"]
    assert saved_config["tasks"] == "0-4,5-9"
    assert saved_config["shared_epochs"] == 4  # the trunk's default, twice the singles' 2, as it ran
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    single = [(r["task"], r["epoch"]) for r in epochs if r["phase"] == "single_epoch"]
    joint = [(r["method"], r["epoch"], r["epochs"]) for r in epochs if r["phase"] == "joint"]
    assert single == [(0, 1), (0, 2), (1, 1), (1, 2)]  # every epoch of every single network, in order
    # the trunk trains twice a single network's epochs by default
    assert sorted(joint) == [("mtz", 1, 1), ("pam", 1, 1), *[("shared", e, 4) for e in range(1, 5)]]
    assert all(r["train_loss"] > 0 and r["seconds"] > 0 for r in epochs if r["phase"] in ("single_epoch", "joint"))
    merged = {r["method"]: r for r in epochs if r["phase"] == "merged"}
    trained = {r["method"]: r for r in epochs if r["phase"] == "joint_trained"}
    reference = saved["single_task"]["val_accuracy"]
    # what merging cost before joint training and where pruning starts, against the single networks
    for record in [merged["pam"], merged["mtz"], *trained.values()]:
        accuracy = record["val_accuracy"]
        assert set(accuracy) == {"0", "1"}
        assert record["worst_val_drop"] == round(100 * max(reference[t] - a for t, a in accuracy.items()), 2)
        assert record["within_tolerance"] == (record["worst_val_drop"] <= 5 + 1e-6)  # the fixture's tolerance
    assert set(trained) == {"pam", "mtz", "shared"}
    assert "val_accuracy" not in merged["shared"]  # trained from scratch: nothing to lose
    for name, method in saved["methods"].items():  # the tolerance's verdict on the final networks, with its figures
        accuracy = method["val_accuracy"]
        assert set(accuracy) == {"0", "1"} and all(0.4 < a <= 1 for a in accuracy.values())
        assert method["worst_val_drop"] == round(100 * max(reference[t] - a for t, a in accuracy.items()), 2)
        if name != "nomerge":  # the network of the last step kept, else the one pruning started from
            kept = [r for r in epochs if r["phase"] == "prune" and r["method"] == name and r["within_tolerance"]]
            assert accuracy == pytest.approx((kept or [trained[name]])[-1]["val_accuracy"], abs=1e-6)
        assert method["within_tolerance"] == (method["worst_val_drop"] <= 5 + 1e-6)


def test_merged_checkpoints_reload_with_their_accuracy(fashion_merge):
    out, results = fashion_merge
    net, meta = checkpoint.load_model(out / "pam")
    assert isinstance(net, GroupedNet) and meta["tasks"] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert net.widths == [dict(w) for w in results["methods"]["pam"]["widths"]]


def test_merge_from_saved_single_networks(fashion_merge, tmp_path):
    out, _ = fashion_merge
    singles = ",".join(str(out / "singles" / f"task{t}") for t in range(2))
    code = main(["merge", "--dataset", "fashion-mnist", "--subset", "1200", "--val-size", "300", "--tasks", "0-4,5-9",
                 "--checkpoints", singles, "--methods", "nomerge", "--max-steps", "0", "--latency-repeats", "1",
                 "--out", str(tmp_path / "again"), "--quiet"])
    assert code == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    first = json.loads((out / "results.json").read_text())
    assert again["single_task"]["test_accuracy"] == first["single_task"]["test_accuracy"]


def joint_rerun(out: Path, *args: str) -> list[str]:
    """The fixture's flags, from its singles: a run that may prune its joint-trained networks."""
    singles = ",".join(str(out / "singles" / f"task{t}") for t in range(2))
    return ["merge", "--dataset", "fashion-mnist", "--subset", "1200", "--val-size", "300", "--tasks", "0-4,5-9",
            "--epochs", "2", "--batch-size", "64", "--merge-epochs", "1", "--tolerance", "0.05",
            "--checkpoints", singles, "--latency-repeats", "1", "--quiet", *args]


def test_a_joint_trained_network_is_pruned_again_without_merging_or_training_it(fashion_merge, tmp_path):
    out, first = fashion_merge
    joint = tmp_path / "joint"  # a copy that records a setting no longer compared and lacks one added since
    joint.with_suffix(".safetensors").write_bytes((out / "pam" / "joint.safetensors").read_bytes())
    meta = json.loads((out / "pam" / "joint.json").read_text())
    single = {k: v for k, v in meta["settings"]["single"].items() if k != "shuffle_tiles"}
    assert len(single) < len(meta["settings"]["single"])
    joint.with_suffix(".json").write_text(json.dumps({**meta, "settings": {**meta["settings"], "retired": 1,
                                                                           "single": single}}))
    # the singles' epochs do not make PAM's network: a run may change them
    assert main(joint_rerun(out, "--joint", str(joint), "--methods", "pam", "--importance",
                            "magnitude", "--max-steps", "1", "--epochs", "3",
                            "--out", str(tmp_path / "again"))) == 0
    records = [json.loads(line) for line in (tmp_path / "again" / "metrics.jsonl").read_text().splitlines()]
    assert not [r for r in records if r["phase"] == "joint"]
    assert [r.get("joint") for r in records if r["phase"] == "merged"] == ["given"]
    before = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    start = [[r["val_accuracy"] for r in run if r["phase"] == "joint_trained" and r["method"] == "pam"]
             for run in (before, records)]
    assert start[0] == start[1] and len(start[0]) == 1  # the same network, where pruning starts
    again = json.loads((tmp_path / "again" / "results.json").read_text())["methods"]["pam"]
    assert again["merged_widths"] == first["methods"]["pam"]["merged_widths"]
    assert all(w[g] <= m[g] for w, m in zip(again["widths"], again["merged_widths"], strict=True) for g in w)
    assert json.loads((tmp_path / "again" / "config.json").read_text())["config"]["joint"] == [str(joint)]


def changed_singles(out: Path, folder: Path) -> str:
    """Copies of the fixture's single networks with one weight of task 1's changed."""
    for t in range(2):
        for suffix in (".safetensors", ".json"):
            (folder / f"task{t}{suffix}").write_bytes((out / "singles" / f"task{t}{suffix}").read_bytes())
    state = load_file(str(folder / "task1.safetensors"))
    name = sorted(state)[0]
    state[name] = state[name] + 0.01
    save_file(state, str(folder / "task1.safetensors"))
    return f"{folder / 'task0'},{folder / 'task1'}"


@pytest.mark.parametrize("drop, tried", [(12.0, False), (8.0, True)])
def test_a_merged_network_far_outside_the_tolerance_is_left_unpruned_without_trying(fashion_merge, tmp_path,
                                                                                   monkeypatch, drop, tried):
    import prunefuse.merge.pipeline as pipeline

    def below(self, nets):  # every network misses the tolerance (5 points here) by ``drop``
        return {"val_accuracy": {}, "worst_val_drop": drop, "within_tolerance": False}

    monkeypatch.setattr(pipeline.MergeRun, "below_singles", below)
    out, _ = fashion_merge
    assert main(joint_rerun(out, "--joint", str(out / "pam" / "joint"), "--methods", "pam", "--max-steps", "1",
                            "--out", str(tmp_path / "strict"))) == 0
    records = [json.loads(line) for line in (tmp_path / "strict" / "metrics.jsonl").read_text().splitlines()]
    assert bool([r for r in records if r["phase"] == "prune"]) == tried  # a near miss gets its steps
    skipped = next(r for r in records if r["phase"] == "pruned").get("skipped")
    assert skipped == (None if tried else "more than twice the tolerance below before pruning")
    if not tried:
        results = json.loads((tmp_path / "strict" / "results.json").read_text())["methods"]["pam"]
        assert results["widths"] == results["merged_widths"] and not results["within_tolerance"]
        assert not results["pruned"] and "even before pruning, so left unpruned" in (tmp_path / "strict" / "report.md"
                                                                                     ).read_text()


def test_a_budget_prunes_even_a_network_far_outside_the_tolerance_and_the_report_says_how(fashion_merge, tmp_path,
                                                                                        monkeypatch):
    import prunefuse.merge.pipeline as pipeline

    def below(self, nets):  # every network misses the tolerance (5 points here) by 12
        return {"val_accuracy": {}, "worst_val_drop": 12.0, "within_tolerance": False}

    monkeypatch.setattr(pipeline.MergeRun, "below_singles", below)
    out, _ = fashion_merge
    run = tmp_path / "budget"
    assert main(joint_rerun(out, "--joint", str(out / "pam" / "joint"), "--methods", "pam", "--prune-budget", "0.5",
                            "--retrain-epochs", "1", "--out", str(run))) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["phase"] == "prune" and "step" in r]
    assert steps and [r["epoch"] for r in records if r["phase"] == "retrain"] == [1]
    assert next(r for r in records if r["phase"] == "pruned")["steps"] == len(steps)
    results = json.loads((run / "results.json").read_text())
    assert results["pruning"] == {"budget": 0.5, "retrain_epochs": 1} and results["methods"]["pam"]["pruned"]
    merged, _ = checkpoint.load_model(out / "pam" / "joint")
    assert results["methods"]["pam"]["subsets"][-1]["flops"] <= 0.5 * 2 * merged.analytic_macs([0, 1])
    report = (run / "report.md").read_text()
    assert "after pruning to 0.5 of the FLOPs (--prune-budget) and --retrain-epochs 1" in report


@pytest.mark.parametrize("case, message", [
    ("merge flags", "merge_lr: 0.05 there, 0.1 now"),
    ("method", "add pam to --methods"),
    ("twice", "two networks for pam"),
    ("not joint", "not a merged network after joint training"),
    ("other singles", "other single-task networks"),
])
def test_a_joint_network_made_otherwise_is_refused(fashion_merge, tmp_path, capsys, case, message):
    out, _ = fashion_merge
    joint, methods, flags = str(out / "pam" / "joint"), "pam", []
    if case == "merge flags":
        flags = ["--merge-lr", "0.1"]
    elif case == "method":
        methods = "nomerge,mtz"
    elif case == "twice":  # two files of one method (one path twice is refused when the flags are read)
        for suffix in (".safetensors", ".json"):
            (tmp_path / f"copy{suffix}").write_bytes((out / "pam" / f"joint{suffix}").read_bytes())
        joint = f"{joint},{tmp_path / 'copy'}"
    elif case == "not joint":
        joint = str(out / "singles" / "task0")
    else:
        flags = ["--checkpoints", changed_singles(out, tmp_path)]
    code = main(joint_rerun(out, "--joint", joint, "--methods", methods, "--out", str(tmp_path / "x"), *flags))
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()  # refused before the run directory is claimed


def test_merge_distils_from_the_single_networks_and_widens_the_shared_trunk(fashion_merge, tmp_path, monkeypatch):
    calls = {}
    distill = MultiTaskObjective.distill

    def counted(self, *args):
        calls[self.which] = calls.get(self.which, 0) + 1
        return distill(self, *args)

    monkeypatch.setattr(MultiTaskObjective, "distill", counted)
    out, _ = fashion_merge
    singles = ",".join(str(out / "singles" / f"task{t}") for t in range(2))
    assert main(["merge", "--dataset", "fashion-mnist", "--subset", "1200", "--val-size", "300", "--tasks", "0-4,5-9",
                 "--checkpoints", singles, "--methods", "shared,nomerge", "--epochs", "1", "--max-steps", "1",
                 "--finetune-samples", "200", "--distill", "--kd-alpha", "0.2", "--shared-width", "1.5",
                 "--shared-epochs", "2", "--latency-repeats", "1", "--out", str(tmp_path / "kd"), "--quiet"]) == 0
    saved = json.loads((tmp_path / "kd" / "config.json").read_text())["config"]
    assert saved["distill"] is True and saved["shared_width"] == 1.5 and saved["kd_alpha"] == 0.2
    assert saved["shared_epochs"] == 2
    assert saved["single"]["kd_alpha"] == 0.2 and saved["single"]["kd_temperature"] == 1.0  # the merge default
    assert set(calls) == {None, (0, 1), (0,), (1,)}  # shared: joint training, pruning; each nomerge network
    assert calls[None] == 2 * (900 // 128)  # --shared-epochs 2 over 1200 - 300 images, whole batches of 128
    results = json.loads((tmp_path / "kd" / "results.json").read_text())
    assert all(0.4 < a <= 1 for m in results["methods"].values() for a in m["test_accuracy"].values())
    assert [w["shared"] for w in results["methods"]["shared"]["merged_widths"]] == [9, 24, 180, 126]
    assert all(w["shared"] <= n for w, n in zip(results["methods"]["shared"]["widths"], [9, 24, 180, 126], strict=True))


def test_checkpoints_of_another_architecture_than_arch_are_refused(fashion_merge, tmp_path, capsys):
    out, _ = fashion_merge
    for name in ("task0.safetensors", "task0.json", "task1.safetensors", "task1.json"):
        (tmp_path / name).write_bytes((out / "singles" / name).read_bytes())
    meta = json.loads((tmp_path / "task1.json").read_text())
    (tmp_path / "task1.json").write_text(json.dumps({**meta, "arch": "vgg11"}))
    flags = ["merge", "--dataset", "fashion-mnist", "--subset", "1200", "--val-size", "300", "--out",
             str(tmp_path / "x"), "--quiet"]
    for checkpoints, arch, words in (((tmp_path / "task0", tmp_path / "task1"), [], "task1 holds a vgg11"),
                                     ((out / "singles" / "task0", out / "singles" / "task1"), ["--arch", "vgg11"],
                                      "holds a lenet5, not the --arch vgg11 asked for")):
        code = main([*flags, *arch, "--checkpoints", ",".join(map(str, checkpoints))])
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, message", [
    (["--tasks", "0-9"], "at least two tasks"),
    (["--kd-alpha", "0.3"], "without --distill"),
    (["--tasks", "0-4,3-9"], "must not overlap"),
    (["--tasks", "0-4,5-11"], "outside"),
    (["--arch", "preact20"], "plain feed-forward"),
    (["--methods", "pam,magic"], "unknown method"),
    (["--mtz-share", "1.5"], "out of range"),
    (["--exclusive-quota", "1.5"], "exclusive-quota"),
    (["--exclusive-quota", "0.2", "--methods", "nomerge"], "without the pam method"),
    (["--empty-groups", "--importance", "vib"], "applies to taylor and magnitude"),
    (["--shared-width", "0"], "out of range"),
    (["--shared-width", "2", "--methods", "pam"], "without the shared method"),
    (["--shared-epochs", "30", "--methods", "pam,nomerge"], "without the shared method"),
    (["--mtz-share", "0.3", "--methods", "pam"], "--mtz-share has no effect without the mtz method"),
    (["--merge-epochs", "2", "--methods", "nomerge,shared"], "without the pam or mtz method"),
    (["--conv-cells", "2", "--methods", "mtz"], "--conv-cells has no effect without the pam method"),
    (["--vib-epochs", "2"], "--vib-epochs shapes the VIB pruner, not taylor"),
    (["--min-step-fraction", "0.5"], "minimum step fraction"),
    (["--prune-budget", "1"], "--prune-budget"),
    (["--prune-budget", "0.3", "--importance", "vib"], "--prune-budget applies to taylor and magnitude"),
    (["--retrain-epochs", "-1"], "--retrain-epochs"),
    (["--prune-budget", "0.3", "--max-steps", "5"], "--max-steps shapes pruning to the tolerance"),
    (["--val-size", "5000"], "--val-size"),
    (["--device", "mps"], "unknown device 'mps'"),
    (["--joint", "run/pam/joint"], "--joint needs the single-task networks"),
])
def test_merge_bad_input_gets_one_line_and_exit_2(args, message, tmp_path, capsys):
    try:
        code = main(["merge", "--out", str(tmp_path / "run"), "--quiet", "--epochs", "1", *args])
    except SystemExit as e:  # a malformed number is refused by the parser itself
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # nothing left that would refuse the corrected command


def test_a_layout_gives_each_task_its_own_exclusive_width_or_one_for_all(monkeypatch):
    """bench/pam_layouts.py prices the layouts it is given; a misread width would misprice them."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    from pam_layouts import parse_layout
    uniform, own = parse_layout("3+1,4+0", 2, 3), parse_layout("3+0/1/2,4+2", 2, 3)
    assert uniform == [{"shared": 3, "t0": 1, "t1": 1, "t2": 1}, {"shared": 4, "t0": 0, "t1": 0, "t2": 0}]
    assert own == [{"shared": 3, "t0": 0, "t1": 1, "t2": 2}, {"shared": 4, "t0": 2, "t1": 2, "t2": 2}]
    for wrong in ("3+0/1,4+0", "3+1", "0+1,4+0", "3+a,4+0", "3+1,4+0,5+0", "3,4+0"):
        with pytest.raises(SystemExit, match="SHARED\\+EXCLUSIVE"):
            parse_layout(wrong, 2, 3)


def test_a_train_seed_replicates_a_run_on_its_split(tmp_path):
    """A replicate (another --train-seed) must hold out the images that the single networks it merges
    were trained without; a train seed equal to --seed is the run itself, with one config.json."""
    from prunefuse.cli import build_parser
    from prunefuse.cli.merge import merge_config
    from prunefuse.merge.pipeline import MergeRun

    def config(*flags):
        return merge_config(build_parser().parse_args(["merge", "--out", str(tmp_path), *flags]))

    run, replicate, other = config("--seed", "3"), config("--seed", "3", "--train-seed", "4"), config("--seed", "4")
    assert (replicate.single.seed, replicate.validation_seed) == (4, 3)
    assert replace(run, single=replace(run.single, seed=5)).validation_seed == 3  # the split stays put
    assert config("--seed", "3", "--train-seed", "3").to_dict() == run.to_dict()
    held_out = []
    for c in (run, replicate, other):
        merge_run = MergeRun(c, tmp_path, quiet=True)
        merge_run.load_data()
        held_out.append(merge_run.val.images)
    assert torch.equal(held_out[0], held_out[1]) and not torch.equal(held_out[0], held_out[2])


@pytest.mark.parametrize("train_seed, expected", [(None, 3), (7, 7)])
def test_a_layout_trains_with_its_own_seed_on_the_run_split(monkeypatch, capsys, train_seed, expected):
    """A second training seed must not move the validation split: the single networks were trained
    without it, and another split would score them on their own training images."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    import pam_layouts
    seen = {}

    class Run:
        def __init__(self, config, out, quiet):
            self.config = config

        def load_data(self):
            seen["split"], self.val, self.test = self.config.validation_seed, "val", "test"

        def load_singles(self, paths):
            return [None, None]

        def accuracy(self, net, which, data):
            return dict.fromkeys(which, 0.9)

        def joint_finetune(self, net, epochs, lr, schedule, on_epoch):
            seen["training"], seen["init"] = self.config.single.seed, torch.initial_seed()
            history = [{"epoch": epoch, "train_loss": 0.5 + (epochs - epoch) / 100, "train_accuracy": 0.75,
                        "seconds": 2.0} for epoch in range(1, epochs + 1)]
            for record in history:
                on_epoch(record)
            return SimpleNamespace(history=history)

    monkeypatch.setattr(pam_layouts, "MergeRun", Run)
    monkeypatch.setattr(pam_layouts, "GroupedNet", lambda plan, widths, heads: "net")
    layout = SimpleNamespace(plan=None, widths=None, head_sizes=None)
    flags = ["--dataset", "fashion-mnist-grid", "--tasks", "0-1,2-3", "--seed", "3", "--checkpoints", "a,b"]
    drops = pam_layouts.trained_drops(flags, {"layout": layout}, 25, train_seed)
    assert seen == {"split": 3, "training": expected, "init": expected}
    assert drops["layout"][pam_layouts.PER_TASK] == "0.00 / 0.00"
    assert drops["layout"][pam_layouts.TRAIN_LOSS] == 0.5  # the last epoch's, not the first's (0.74)
    # an hour-long training says how far it is: every 25 // 10 = 2 epochs, and after the last
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"layout: epoch {e}/25" for e in (2, 4, 6, 8, 10, 12, 14, 16,
                                                                                           18, 20, 22, 24, 25)]
    assert lines[-1] == "layout: epoch 25/25, train loss 0.5000, train accuracy 0.7500, 2.0 s an epoch"


def test_budgets_compare_each_method_at_its_cheapest_budget_within_the_tolerance(monkeypatch, capsys, tmp_path):
    """bench/pam_budgets.py: a ratio taken at the wrong budget of either method would misstate the comparison."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    import pam_budgets
    outcome = {("pam", "0.02"): (1e6, 1.6), ("pam", "0.03"): (1.5e6, 0.7), ("pam", "0.04"): (2e6, 0.2),
               ("nomerge", "0.1"): (3e6, 1.2), ("nomerge", "0.2"): (6e6, 0.9)}
    asked = []

    def run(out, flags, as_recorded=False):
        method, budget = flags[flags.index("--methods") + 1], flags[flags.index("--prune-budget") + 1]
        asked.append((out.name, flags[:2], flags[flags.index("--retrain-epochs") + 1]))
        seed = int(flags[flags.index("--train-seed") + 1]) if "--train-seed" in flags else 3
        flops, drop = outcome.get((method, budget, seed), outcome[method, budget])
        subsets = [{"tasks": [0], "flops": flops / 2}, {"tasks": [1], "flops": flops / 2}, {"tasks": [0, 1],
                                                                                           "flops": flops}]
        return {"single_task": {"test_accuracy": {"0": 0.9, "1": 0.9}},
                "pruning": {"budget": float(budget), "retrain_epochs": int(flags[-1])},
                "methods": {method: {"subsets": subsets, "test_accuracy": {"0": 0.89, "1": 0.9},
                                     "worst_val_drop": drop, "within_tolerance": drop <= 1}}}

    monkeypatch.setattr(pam_budgets, "merge_results", run)
    monkeypatch.setattr("sys.argv", ["pam_budgets.py", "--out", str(tmp_path), "--retrain-epochs", "240",
                                     "--budgets", "pam=0.02,0.03,0.04", "--budgets", "nomerge=0.1,0.2", "--",
                                     "--seed", "3"])
    pam_budgets.main()
    assert asked == [(f"{m}-{b}", ["--seed", "3"], "240") for m, b in outcome]
    best = capsys.readouterr().out.split("[95% interval]:")[1]
    assert "| pam | 0.03 | 1.5 | +0.70 | 1.000 | 1.000 | 1.000 | 1.000 |" in best  # 0.02 is cheaper but outside
    assert "| nomerge | 0.2 | 6 | +0.90 | 4.000 | 4.000 | 4.000 | 4.000 |" in best  # at its only budget within
    # a second training seed: pam 0.03 falls outside there, so 0.04 is the cheapest within at both, and
    # the ratios pair runs by seed (6/2 and 9/3; crossed, 6/3 and 9/2 would spread)
    outcome.update({("pam", "0.03", 4): (1.5e6, 1.3), ("pam", "0.04", 4): (3e6, 0.4),
                    ("nomerge", "0.2", 4): (9e6, 0.5)})
    asked.clear()
    monkeypatch.setattr("sys.argv", ["pam_budgets.py", "--out", str(tmp_path), "--retrain-epochs", "240",
                                     "--budgets", "pam=0.02,0.03,0.04", "--budgets", "nomerge=0.1,0.2",
                                     "--train-seeds", "4,3", "--", "--seed", "3"])
    pam_budgets.main()
    assert [name for name, _, _ in asked] == [f"{m}-{b}{suffix}" for m, b in list(outcome)[:5]
                                              for suffix in ("", "-train4")]
    best = capsys.readouterr().out.split("[95% interval]:")[1]
    assert "| pam | 0.04 | 2.5 | +0.30 [-0.97, +1.57] | 1.000 [1.000, 1.000] |" in best
    assert "| nomerge | 0.2 | 7.5 | +0.70 [-1.84, +3.24] | 3.000 [3.000, 3.000] |" in best
    assert best.count("[3.000, 3.000] | +0.40 [-3.41, +4.21] |") == 1  # 0.9 - 0.2 and 0.5 - 0.4, by seed
    outcome[("nomerge", "0.2")] = (6e6, 1.1)  # none within at every seed: the nearest on average, marked
    pam_budgets.main()
    assert "| nomerge | 0.2 (outside) | 7.5 |" in capsys.readouterr().out
    monkeypatch.setattr("sys.argv", ["pam_budgets.py", "--out", str(tmp_path), "--retrain-epochs", "240",
                                     "--budgets", "pam=0.03", "--budgets", "nomerge=0.1"])
    asked.clear()
    with pytest.raises(SystemExit, match="merge's flags after --"):
        pam_budgets.main()  # seed 3's runs would be named and labelled as --seed 0's, and read unchecked
    assert asked == []
    monkeypatch.setattr("sys.argv", ["pam_budgets.py", "--out", str(tmp_path), "--retrain-epochs", "240",
                                     "--budgets", "pam=0.03", "--budgets", "nomerge=0.1", "--", "--train-seed", "4"])
    with pytest.raises(SystemExit, match="as --train-seeds before --"):
        pam_budgets.main()  # it would give every run, named as --seed's own, another training seed


def test_a_second_arm_of_a_method_runs_it_with_its_own_flags_in_a_folder_and_row_of_its_own(monkeypatch, capsys,
                                                                                             tmp_path):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    import pam_budgets
    asked = []

    def run(out, flags, as_recorded=False):
        method = flags[flags.index("--methods") + 1]
        allocation = flags[len(flags) - 1 - flags[::-1].index("--allocation") + 1]  # the last one given wins
        asked.append((out.name, method, allocation))
        flops = {("pam", "cost-all"): 1e6, ("pam", "cost"): 2e6, ("nomerge", "cost"): 3e6}[method, allocation]
        subsets = [{"tasks": [0], "flops": flops / 2}, {"tasks": [1], "flops": flops / 2}, {"tasks": [0, 1],
                                                                                           "flops": flops}]
        return {"single_task": {"test_accuracy": {"0": 0.9, "1": 0.9}},
                "methods": {method: {"subsets": subsets, "test_accuracy": {"0": 0.9, "1": 0.9},
                                     "worst_val_drop": 0.5, "within_tolerance": True}}}

    monkeypatch.setattr(pam_budgets, "merge_results", run)
    monkeypatch.setattr("sys.argv", ["pam_budgets.py", "--out", str(tmp_path), "--retrain-epochs", "240",
                                     "--budgets", "pam=0.03", "--budgets", "pam.costall=0.03", "--budgets",
                                     "nomerge=0.1", "--flags", "pam.costall=--allocation cost-all", "--",
                                     "--seed", "3", "--allocation", "cost"])
    pam_budgets.main()
    assert asked == [("pam-0.03", "pam", "cost"), ("pam.costall-0.03", "pam", "cost-all"),
                     ("nomerge-0.1", "nomerge", "cost")]
    best = capsys.readouterr().out.split("[95% interval]:")[1]
    assert "| pam.costall | 0.03 | 1 | +0.50 | 0.500 | 0.500 | 0.500 | 0.500 |" in best
    assert "| nomerge | 0.1 | 3 | +0.50 | 1.500 | 1.500 | 1.500 | 1.500 |" in best
    monkeypatch.setattr("sys.argv", ["pam_budgets.py", "--out", str(tmp_path), "--retrain-epochs", "240",
                                     "--budgets", "pam=0.03", "--budgets", "pams.costall=0.03", "--", "--seed", "3"])
    with pytest.raises(SystemExit, match=r"METHOD\.LABEL"):
        pam_budgets.main()


def test_budgets_are_checked_before_any_run_and_written_one_way(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    from pam_budgets import parse_budgets
    assert parse_budgets(["pam=0.030,.03", " nomerge = 0.2,0.1", "pam=0.04"]) == {"pam": ["0.03", "0.04"],
                                                                                  "nomerge": ["0.1", "0.2"]}
    for wrong, message in [("pam", "METHOD=B1,B2"), ("pams=0.1", "METHOD=B1,B2"), ("pam=0.1,", "numbers"),
                           ("pam=abc", "numbers"), ("pam=1.5", "between 0 and 1"), ("pam=0", "between 0 and 1")]:
        with pytest.raises(SystemExit, match=message):
            parse_budgets([wrong])


def test_a_method_gets_flags_of_its_own_and_a_refused_flag_is_one_line(monkeypatch, tmp_path):
    """merge refuses a flag none of its methods reads, so PAM's flags cannot go to every run."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    import common
    from pam_budgets import method_flags
    assert method_flags(["pam=--exclusive-quota 1", " pam =--merge-epochs 0", "nomerge="]) == {
        "pam": ["--exclusive-quota", "1", "--merge-epochs", "0"], "nomerge": []}
    with pytest.raises(SystemExit, match="METHOD=FLAGS"):
        method_flags(["--exclusive-quota 1"])
    with pytest.raises(SystemExit, match="--merge-epochs has no effect without the pam or mtz method"):
        common.merge_results(tmp_path / "run", ["--methods", "nomerge", "--merge-epochs", "0"])
    assert not (tmp_path / "run").exists()


def test_reference_noise_measures_replicates_against_the_reference_and_judges_against_their_mean(
        monkeypatch, capsys, tmp_path):
    """bench/pam_reference_noise.py: the tolerance's floor is read off replicates of the very single networks
    that judge the merges; a replicate on another split, or two runs of one seed, would not be one."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    import pam_reference_noise

    def run(name, seed, val=(0.9, 0.8), test=(0.9, 0.8), singles=None, methods=None, **config):
        config = {"data": {"name": "fashion-mnist-grid", "seed": 3, "data_dir": None}, "tasks": "0-4,5-9",
                  "arch": "lenet5", "width": 1.0, "val_size": 5000,
                  "single": {"epochs": 30, "seed": seed, "device": "auto"}, "prune": {"tolerance": 0.01},
                  "split_seed": 3, "checkpoints": None, **config}
        if config["split_seed"] is None:
            del config["split_seed"]  # as written before --train-seed existed: the split followed the seed
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"command": "merge", "config": config}))
        single = singles or {"val_accuracy": dict(enumerate(val)), "test_accuracy": dict(enumerate(test))}
        (tmp_path / name / "results.json").write_text(json.dumps({"single_task": single, "methods": methods or {}}))
        return str(tmp_path / name)

    def bench(*argv):
        monkeypatch.setattr("sys.argv", ["pam_reference_noise.py", *argv])
        pam_reference_noise.main()
        return capsys.readouterr().out

    reference = run("ref", 3, test=(0.91, 0.79), split_seed=None)
    replicates = [run("train4", 4, (0.89, 0.785), (0.90, 0.785)),
                  run("train5", 5, (0.905, 0.80), (0.915, 0.78), data={"name": "fashion-mnist-grid", "seed": 3,
                                                                        "data_dir": "/elsewhere"})]
    recorded = json.loads((tmp_path / "ref" / "results.json").read_text())["single_task"]
    subsets = [{"tasks": [0], "flops": 1e6}, {"tasks": [1], "flops": 1e6}, {"tasks": [0, 1], "flops": 2e6}]
    pam = {"subsets": subsets, "val_accuracy": {"0": 0.895, "1": 0.789}}
    judged = run("pam", 3, singles=recorded, methods={"pam": pam}, checkpoints=["ref/singles/task0"])
    out = bench("--reference", reference, "--replicates", ",".join(replicates), "--judge", judged)
    assert "| 4 | 1 | 1.5 | 1.5 | 1 |" in out  # T1 the worst on validation, T0 on test
    assert "| 5 | -0.5 | 0 | 0 | 1 |" in out  # read from another --data-dir: the same networks
    assert "validation +0.75 [-8.78, +10.28], test +1.00 [+1.00, +1.00] points" in out
    assert "(1 point(s)) on validation at 1 of 2." in out
    assert "| T1 | 80 | 79.5 | 0.866 | 0.5 |" in out  # the reference lies half a point above its draws' mean
    # 1.1 below the reference, outside the tolerance; 0.6 below the draws' mean, within it
    assert "| pam | pam | 2 | 1.1 | 0.6 | True |" in out
    refusals = {"held-out split": ["--replicates", run("split4", 6, split_seed=4)],
                "single.epochs": ["--replicates", run("longer", 7, single={"epochs": 60, "seed": 7})],
                "share a training seed": ["--replicates", f"{replicates[0]},{run('again4', 4)}"],
                "another run \\(--checkpoints\\)": ["--replicates", run("merged", 8, checkpoints=["x"])],
                "holds no merge run": ["--replicates", str(tmp_path / "missing")],
                "damaged": ["--replicates", run("broken", 9)],
                "other single networks": ["--replicates", replicates[0], "--judge", run(
                    "stranger", 3, methods={"pam": pam}, checkpoints=["x"],
                    singles={**recorded, "val_accuracy": {"0": 0.91, "1": 0.80}})],
                "predates": ["--replicates", replicates[0], "--judge", run(
                    "old", 3, singles=recorded, checkpoints=["x"], methods={"pam": {"subsets": subsets}})]}
    (tmp_path / "broken" / "config.json").write_text("{")
    for message, argv in refusals.items():
        with pytest.raises(SystemExit, match=message):
            bench("--reference", reference, *argv)
    assert capsys.readouterr().out == ""  # refused before any table


def test_a_benchmark_merge_run_reads_the_same_new_or_finished(monkeypatch, tmp_path):
    """A new run's results came back with integer task keys and a finished one's with string keys, so a
    new budget beside finished ones was refused as holding other single networks. A finished run is
    read back only as the run asked for: a replicate at another training seed is not the first run."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    import common
    from prunefuse.io.rundir import RunDirectory
    from prunefuse.io.storage import write_json

    def run_merge(config, out, quiet):
        results = {"single_task": {"val_accuracy": {0: 0.9, 1: 0.8}}}
        with RunDirectory.claim(out, "merge", config.to_dict()):
            write_json(out / "results.json", results)
        return results

    monkeypatch.setattr(common, "run_merge", run_merge)
    flags = ["--dataset", "fashion-mnist-grid", "--tasks", "0-1,2-3", "--seed", "3"]
    new = common.merge_results(tmp_path / "run", flags)
    assert new == common.merge_results(tmp_path / "run", flags) == {"single_task": {"val_accuracy": {"0": 0.9,
                                                                                                     "1": 0.8}}}
    refused = r"^\S+/run holds a 'prunefuse merge' run with another config \(single\.seed: 3 there, 4 now; "
    with pytest.raises(SystemExit, match=refused + r"split_seed: None there, 3 now\); give another --out"):
        common.merge_results(tmp_path / "run", [*flags, "--train-seed", "4"])
    assert common.merge_results(tmp_path / "run", ["--seed", "3"], as_recorded=True) == new  # a bench given no flags
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    del saved["config"]["split_seed"]  # written before --train-seed existed
    del saved["config"]["single"]["shuffle_tiles"]  # and before --shuffle-tiles, whose default keeps its behaviour
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    assert common.merge_results(tmp_path / "run", flags) == new
    with pytest.raises(SystemExit, match=r"single\.shuffle_tiles: False there, True now"):
        common.merge_results(tmp_path / "run", [*flags, "--shuffle-tiles"])
