"""Scale-out under torchrun: 2 CPU processes on gloo against one plain process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import prunefuse.active.state as state_module

WORKER = Path(__file__).with_name("distributed_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # gloo on the CPU, on a GPU machine too


def torchrun(*args, env=None, nproc=2):
    """``--tee 3`` copies each rank's own output into stderr, so a failure shows its cause, not only the
    launcher's summary."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                           "--tee", "3", *args], capture_output=True, text=True, env=env or ENV, timeout=600)


def torchrun_ok(*args, env=None):
    """A run that must succeed. Once in about 35 full-suite runs here both gloo ranks died of SIGABRT
    in this CPU-only training (never in 60 single-process or 14 two-process runs alone); the cause was
    not found, so a run that dies of a signal is tried once more, and both outputs are kept."""
    done = torchrun(*args, env=env)
    if done.returncode != 0 and "Signal" in done.stderr:
        first = done.stderr
        done = torchrun(*args, env=env)
        done.stderr = f"{done.stderr}\n--- first attempt ---\n{first}"
    assert done.returncode == 0, done.stderr[:3000] + "\n...\n" + done.stderr[-3000:]
    return done


def plain(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, timeout=600)


def test_two_process_training_step_matches_one_process_with_the_same_global_batch(tmp_path):
    two, one = tmp_path / "two.safetensors", tmp_path / "one.safetensors"
    torchrun_ok(str(WORKER), "train", str(two))
    assert plain(str(WORKER), "train", str(one)).returncode == 0
    a, b = load_file(str(two)), load_file(str(one))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)
    from prunefuse import models

    initial = models.create("lenet5", 10, 1, 8).state_dict()  # the worker's starting point
    assert not torch.allclose(a["conv1.weight"], initial["conv1.weight"])  # the epoch really trained


def test_sharded_scoring_gives_the_same_scores_and_selection(tmp_path):
    torch.manual_seed(5)
    from prunefuse import models

    weights = tmp_path / "selector.safetensors"
    save_file(models.create("lenet5", 10, 1, 8).state_dict(), str(weights))
    two, one = tmp_path / "two.safetensors", tmp_path / "one.safetensors"
    torchrun_ok(str(WORKER), "score", str(weights), str(two))
    assert plain(str(WORKER), "score", str(weights), str(one)).returncode == 0
    a, b = load_file(str(two)), load_file(str(one))
    for k in ("logits", "features", "indices_least_confidence", "indices_kcenter", "indices_badge"):
        assert torch.equal(a[k], b[k]), k


AL_ARGS = ["-m", "prunefuse", "run", "--method", "prunefuse", "--pool-size", "300", "--initial", "0.1",
           "--budgets", "0.2,0.3", "--arch", "lenet5", "--selector-epochs", "2", "--target-epochs", "2",
           "--selector-steps", "0", "--target-steps", "0", "--quiet"]


def test_active_learning_loop_under_torchrun_writes_what_a_plain_run_writes(tmp_path):
    two = torchrun_ok(*AL_ARGS, "--out", str(tmp_path / "two"))
    one = plain(*AL_ARGS, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    files = {p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*")}
    assert files == {p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*")}
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    assert [r["labeled"] for r in results["rounds"]] == [60, 90]
    assert two.stdout.count("results, report.md and plots") == 1  # rank 0 alone reports


def test_resume_under_torchrun(tmp_path):
    out = tmp_path / "run"
    killed = torchrun(*AL_ARGS, "--out", str(out), env={**ENV, state_module.FAULT_ENV: "r2.select"})
    assert killed.returncode != 0
    steps = json.loads((out / "state.json").read_text())["steps"]
    assert "r2.select" in steps and "r2.target" not in steps
    torchrun_ok("-m", "prunefuse", "run", "--resume", str(out), "--quiet")
    torchrun_ok(*AL_ARGS, "--out", str(tmp_path / "reference"))
    resumed = json.loads((out / "results.json").read_text())
    expected = json.loads((tmp_path / "reference" / "results.json").read_text())
    assert resumed["final_accuracy"] == pytest.approx(expected["final_accuracy"])
    assert (out / "labeled.csv").read_text() == (tmp_path / "reference" / "labeled.csv").read_text()


def test_more_processes_than_gpus_is_refused_with_the_fix(monkeypatch):
    from prunefuse import distributed
    from prunefuse.errors import UserError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match=r"local rank 1 has no GPU.*--nproc_per_node"):
        distributed.init()
