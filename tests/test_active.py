import csv
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from prunefuse.active import ActiveConfig, compare, resume, run_active
from prunefuse.active import state as state_module
from prunefuse.errors import UserError
from prunefuse.train import TrainConfig


def tiny(dataset="fashion-mnist", **kw):
    base = dict(dataset=dataset, pool_size=160, test_size=100, arch="preact8", initial=0.1, budgets=[0.2, 0.3],
                selector_epochs=1, target_epochs=2, selector_steps=0, target_steps=0, prune_steps=1, curve_every=1,
                train=TrainConfig(batch_size=32, schedule="onecycle").to_dict())
    base.update(kw)
    return ActiveConfig(**base)


def labeled_rows(out):
    with open(out / "labeled.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def needs_fashion():
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("Fashion-MNIST is not installed")


@pytest.mark.parametrize("overrides", [
    dict(method="prunefuse"), dict(method="al"), dict(method="svp"), dict(method="random"),
    dict(method="prunefuse", fusion=False), dict(method="prunefuse", kd=True),
    dict(method="prunefuse", t_sync=1), dict(method="prunefuse", fill="zero", fusion_scope="conv"),
    dict(method="prunefuse", selection="kcenter"), dict(method="al", selection="badge"),
    dict(method="svp", selection="margin", svp_epochs=1), dict(method="prunefuse", selection="entropy",
                                                               warm_start=True),
], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_loop_runs_every_method_and_flag(needs_fashion, tmp_path, overrides):
    cfg = tiny(**overrides)
    r = run_active(cfg, tmp_path, quiet=True)
    assert [e["labeled"] for e in r["rounds"]] == [32, 48]
    rows = labeled_rows(tmp_path)
    assert len(rows) == 48 and len({row["index"] for row in rows}) == 48
    assert {int(row["round"]) for row in rows} == {0, 1, 2}
    assert 0.0 <= r["final_accuracy"] <= 1.0 and "accuracy" in r["rounds"][-1]
    for key in ("selection_seconds", "selection_flops", "target_seconds"):
        assert r[key] >= 0
    if cfg.method == "random":
        assert r["selection_flops"] == 0
    else:
        assert r["rounds"][0]["selection_flops"] > 0
    for f in ("config.json", "state.json", "metrics.jsonl", "results.json", "report.md", "accuracy_vs_budget.png",
              "accuracy_vs_selection_flops.png", "target_curve.png", "checkpoints/init.safetensors"):
        assert (tmp_path / f).is_file(), f
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["command"] == "run" and config["config"]["seed"] == 0 and config["config"]["method"] == cfg.method
    assert "torch" in config["environment"] and config["environment"]["threads"] >= 1 and config["fingerprint"]


def test_fusion_at_every_budget_reuses_the_next_rounds_selector(tmp_path):
    run_active(tiny("digits", method="prunefuse", eval_at=[0.2, 0.3], budgets=[0.2, 0.3]), tmp_path, quiet=True)
    steps = json.loads((tmp_path / "state.json").read_text())["steps"]
    assert sorted(s for s in steps if s.startswith("fit_")) == ["fit_selector_v0", "fit_selector_v1", "fit_selector_v2"]


def test_selection_cost_scales_with_selector_flops(needs_fashion, tmp_path):
    pf = run_active(tiny(method="prunefuse", prune_ratio=0.5), tmp_path / "pf", quiet=True)
    al = run_active(tiny(method="al"), tmp_path / "al", quiet=True)
    ratio = al["selector_flops_per_sample"] / pf["selector_flops_per_sample"]
    assert 3.0 < ratio < 5.0  # about 1 / (1 - p)^2
    assert al["rounds"][0]["pool_scoring_flops"] == al["selector_flops_per_sample"] * (160 - 16)


def on_cpu(cfg: ActiveConfig) -> ActiveConfig:
    """Bit-exact reruns are a CPU promise: CUDA's convolution kernels may sum in another order each run."""
    return replace(cfg, train={**cfg.train, "device": "cpu"})


def test_runs_are_reproducible(tmp_path):
    cfg = on_cpu(tiny("digits", method="prunefuse"))
    a = run_active(cfg, tmp_path / "a", quiet=True)
    b = run_active(cfg, tmp_path / "b", quiet=True)
    assert labeled_rows(tmp_path / "a") == labeled_rows(tmp_path / "b")
    assert a["final_accuracy"] == b["final_accuracy"]


class SimulatedKill(BaseException):
    pass


@pytest.mark.parametrize("step", ["setup", "fit_selector_v0", "r1.select", "fit_selector_v2", "r2.target"])
def test_crash_in_each_phase_then_resume_matches(tmp_path, monkeypatch, step):
    cfg = on_cpu(tiny("digits", method="prunefuse"))
    reference = run_active(cfg, tmp_path / "reference", quiet=True)

    def kill(pid, sig):
        raise SimulatedKill

    monkeypatch.setattr(state_module.os, "kill", kill)
    monkeypatch.setenv(state_module.FAULT_ENV, step)
    with pytest.raises(SimulatedKill):
        run_active(cfg, tmp_path / "crashed", quiet=True)
    monkeypatch.delenv(state_module.FAULT_ENV)
    resumed = resume(tmp_path / "crashed", quiet=True)
    assert labeled_rows(tmp_path / "crashed") == labeled_rows(tmp_path / "reference")
    assert resumed["final_accuracy"] == reference["final_accuracy"]
    assert [r["labeled"] for r in resumed["rounds"]] == [r["labeled"] for r in reference["rounds"]]


def test_kill_9_then_cli_resume(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "prunefuse", "run", "--method", "al", "--pool-size", "160", "--initial", "0.1",
           "--budgets", "0.2,0.3", "--arch", "preact8", "--selector-epochs", "1", "--target-epochs", "1",
           "--selector-steps", "0", "--target-steps", "0",
           "--out", str(out), "--quiet"]
    env = {**os.environ, state_module.FAULT_ENV: "r2.select", "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert killed.returncode == -9
    state = json.loads((out / "state.json").read_text())
    assert "r2.select" in state["steps"] and "r2.target" not in state["steps"]
    env.pop(state_module.FAULT_ENV)
    done = subprocess.run([sys.executable, "-m", "prunefuse", "run", "--resume", str(out), "--quiet"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "results.json").read_text())["rounds"][-1]["labeled"] == 48


def test_compare_table_has_every_method_with_mean_and_std(tmp_path):
    results, table = compare(["random", "prunefuse@0.7-kd"], [0, 1], tiny("digits"), tmp_path, quiet=True)
    assert len(results) == 4
    assert "| random | random labels | 2 |" in table and "±" in table
    assert "| prunefuse@0.7-kd | selector preact8 pruned p=0.7, fusion reinit/all, KD α=0.5 T=4 | 2 |" in table
    assert "Paired difference against random" in table and "| prunefuse@0.7-kd | 2 |" in table
    assert (tmp_path / "random" / "seed1" / "results.json").is_file()
    again, _ = compare(["random"], [0], tiny("digits"), tmp_path, quiet=True)  # finished runs are reused
    assert again[0]["final_accuracy"] == results[0]["final_accuracy"]


def test_bad_inputs(tmp_path):
    with pytest.raises(UserError, match="pool holds 160"):
        run_active(tiny("digits", budgets=[0.2, 500]), tmp_path / "a")
    with pytest.raises(UserError, match="budgets must grow"):
        run_active(tiny("digits", budgets=[0.3, 0.2]), tmp_path / "b")
    with pytest.raises(UserError, match="not among the budgets"):
        run_active(tiny("digits", eval_at=[0.25]), tmp_path / "c")
    with pytest.raises(UserError, match="out of range"):
        replace(tiny("digits"), prune_ratio=1.0).__post_init__()
    with pytest.raises(UserError, match="unknown method"):
        ActiveConfig(method="coreset-ish")
    with pytest.raises(UserError, match="no run to resume"):
        resume(tmp_path / "nothing")
    with pytest.raises(UserError, match="-nofusion"):
        compare(["al-nokd"], [0], tiny("digits"), tmp_path / "d")


def test_fusion_gives_the_target_the_selector_weights(tmp_path):
    """The fused target starts from the trained selector: its kept conv weights after 0 extra
    epochs would equal the selector's; after training they are at least strongly correlated."""
    cfg = tiny("digits", method="prunefuse", kd=False, target_epochs=1)
    run_active(cfg, tmp_path, quiet=True)
    from prunefuse.io.checkpoint import load_model
    selector, meta = load_model(tmp_path / "checkpoints" / "selector_v2")
    assert "fit_selector_v2" in json.loads((tmp_path / "state.json").read_text())["steps"]
    target, _ = load_model(tmp_path / "checkpoints" / "target_b48")
    out = torch.tensor(meta["channel_map"]["layers"]["conv1"]["out"])
    a, b = selector.conv1.weight.flatten(), target.conv1.weight[out].flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9


def _pool_npz(tmp_path, n=60):
    import numpy as np

    g = np.random.default_rng(0)
    x = g.integers(0, 256, (n, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "pool.npz", x=x, ids=np.array([f"s{i}" for i in range(n)]))
    return tmp_path / "pool.npz"


def test_select_command_on_an_npz_pool(tmp_path):
    from prunefuse.cli import main

    pool = _pool_npz(tmp_path)
    (tmp_path / "labels.csv").write_text("id,label\n" + "".join(f"s{i},{'cat' if i % 2 else 'dog'}\n"
                                                                 for i in range(10)))
    out = tmp_path / "to_label.csv"
    assert main(["select", "--pool", str(pool), "--labels", str(tmp_path / "labels.csv"), "--budget", "5",
                 "--out", str(out), "--arch", "preact8", "--epochs", "2", "--quiet"]) == 0
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and len({r["id"] for r in rows}) == 5
    assert not {r["id"] for r in rows} & {f"s{i}" for i in range(10)}
    # a later select, from the API too, takes the workspace's settings: --arch preact8 and --epochs 2
    # need not be repeated; --overwrite starts afresh from the defaults
    from prunefuse.active import select_from_pool

    with open(tmp_path / "labels.csv", "a") as f:
        f.writelines(f"{r['id']},cat\n" for r in rows)
    assert len(select_from_pool(pool, tmp_path / "labels.csv", 5, out, quiet=True)) == 5
    settings = json.loads((tmp_path / "prunefuse-work" / "config.json").read_text())["config"]
    assert (settings["arch"], settings["epochs"]) == ("preact8", 2)
    assert main(["select", "--pool", str(pool), "--labels", str(tmp_path / "labels.csv"), "--budget", "5",
                 "--out", str(out), "--quiet", "--overwrite", "--steps", "2"]) == 0
    settings = json.loads((tmp_path / "prunefuse-work" / "config.json").read_text())["config"]
    assert (settings["arch"], settings["epochs"], settings["steps"]) == ("preact20", 30, 2)


@pytest.mark.parametrize("body,message", [
    ("id,label\ns1,cat\nnope,dog\n", "not in the pool"),
    ("id,label\ns1,cat\ns1,dog\n", "labeled twice"),
    ("id,label\ns1,cat\ns2,bird\n", "unknown classes"),
])
def test_select_rejects_bad_label_files(tmp_path, capsys, body, message):
    from prunefuse.cli import main

    pool = _pool_npz(tmp_path)
    (tmp_path / "labels.csv").write_text(body)
    code = main(["select", "--pool", str(pool), "--labels", str(tmp_path / "labels.csv"), "--budget", "3",
                 "--out", str(tmp_path / "o.csv"), "--classes", "cat,dog"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_the_loop_labels_what_its_selector_is_least_sure_of(tmp_path):
    """Through the whole loop: the samples dense AL labeled in round 1 are ones its trained selector was
    less confident about than a random draw of the same size from the unlabeled pool; a selection that
    ignored the scores, or sorted them the wrong way, fails this."""
    from prunefuse.active.loop import load_pool
    from prunefuse.data import Normalizer
    from prunefuse.io.checkpoint import load_model
    from prunefuse.train import predict

    cfg = tiny("digits", method="al", selector_epochs=10, selector_steps=300, pool_size=600, initial=60, budgets=[120],
               target_epochs=1)
    run_active(cfg, tmp_path, quiet=True)
    rows = labeled_rows(tmp_path)
    initial = {int(r["index"]) for r in rows if r["round"] == "0"}
    chosen = [int(r["index"]) for r in rows if r["round"] == "1"]
    pool = load_pool(cfg)
    selector, _ = load_model(tmp_path / "checkpoints" / "selector_v0")
    confidence = predict(selector, pool.train.images, Normalizer(*pool.train.channel_stats())).softmax(1).amax(1)
    others = torch.tensor(sorted(set(range(600)) - initial - set(chosen)))
    random = others[torch.randperm(len(others), generator=torch.Generator().manual_seed(0))[:len(chosen)]]
    assert confidence[chosen].mean() < confidence[random].mean() - 0.1
    assert confidence[chosen].max() <= confidence[others].min() + 1e-6  # the least confident of all, in order
