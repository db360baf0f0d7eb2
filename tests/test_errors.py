"""The contract for bad input: exit code 2, one line that names the problem and the fix, no
traceback, and nothing already saved is changed. One test per case found by trying the commands as a
new user would, then a property-based test over every numeric and named option of every command."""

import hashlib
import json
import os
import socket

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prunefuse import data, models
from prunefuse.active.compare import parse_method
from prunefuse.cli import COMMANDS, build_parser, main
from prunefuse.cli.active import active_config, refuse_unread
from prunefuse.train import TrainConfig, fit
from prunefuse.train.schedule import make_scheduler

RUN = ["run", "--method", "random", "--pool-size", "200", "--initial", "20", "--budgets", "40,60", "--arch", "preact8",
       "--target-epochs", "1", "--target-steps", "0", "--test-size", "50", "--quiet"]


def cli(*args) -> int:
    try:
        return main([str(a) for a in args])
    except SystemExit as e:  # argparse's own exit for a malformed command line
        return e.code


def snapshot(folder) -> dict:
    """Every file under ``folder`` with the hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(capsys, code, *words):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli(*RUN, "--out", out) == 0
    return out


@pytest.fixture
def pool(tmp_path):
    g = np.random.default_rng(0)
    ids = np.array([f"s{i}" for i in range(80)])
    np.savez(tmp_path / "pool.npz", x=g.integers(0, 256, (80, 8, 8), dtype=np.uint8), ids=ids)
    return tmp_path / "pool.npz"


def write_labels(path, n, text=None):
    path.write_text(text if text is not None else "id,label\n" + "".join(f"s{i},{'ab'[i % 2]}\n" for i in range(n)))
    return path


# --- a normal first step ------------------------------------------------------------------------
def test_select_with_fewer_labels_than_a_batch_trains(tmp_path, pool):
    labels = write_labels(tmp_path / "labels.csv", 6)
    out = tmp_path / "q.csv"
    assert cli("select", "--pool", pool, "--labels", labels, "--budget", 5, "--out", out, "--arch", "preact8",
               "--epochs", 1, "--steps", 3, "--quiet") == 0
    assert len(out.read_text().splitlines()) == 6


@pytest.mark.parametrize("total", [1, 2, 3, 4, 5, 7])
def test_every_schedule_runs_any_number_of_steps(total):
    for name in ("onecycle", "piecewise", "cosine", "constant"):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        sched = make_scheduler(name, opt, total)
        lrs = []
        for _ in range(total):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert all(0 < lr <= 0.1 + 1e-12 for lr in lrs), (name, lrs)


def test_fit_on_a_set_smaller_than_one_batch_takes_min_steps():
    train = data.load("digits", "train").subset(torch.arange(5))
    torch.manual_seed(0)
    model = models.create("preact8", 10, 1, 8)
    before = model.classifier.weight.detach().clone()
    records = []
    result = fit(model, train, TrainConfig(epochs=1, min_steps=4, batch_size=32, schedule="onecycle"), quiet=True,
                 on_epoch=records.append)
    assert result.steps == 4 and result.epochs == 4 and result.samples == 20
    assert [(r["epoch"], r["epochs"]) for r in records] == [(1, 4), (2, 4), (3, 4), (4, 4)]  # progress reads these
    assert not torch.equal(before, model.classifier.weight.cpu())  # fit leaves the model where it trained


# --- run directories -----------------------------------------------------------------------------
def test_run_into_a_finished_run_with_another_config_changes_nothing(finished_run, capsys):
    before = snapshot(finished_run)
    code = cli(*[a if a != "40,60" else "40,80" for a in RUN], "--seed", 5, "--out", finished_run)
    assert_refused(capsys, code, "another config", "budgets", "--overwrite")
    assert snapshot(finished_run) == before


def test_same_config_reuses_the_finished_run(finished_run, capsys):
    before = json.loads((finished_run / "results.json").read_text())
    assert cli(*RUN, "--out", finished_run) == 0
    assert json.loads((finished_run / "results.json").read_text())["final_accuracy"] == before["final_accuracy"]


def test_overwrite_starts_afresh(tmp_path, finished_run, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(finished_run, out)
    assert cli(*[a if a != "40,60" else "40,80" for a in RUN], "--out", out, "--overwrite") == 0
    assert json.loads((out / "results.json").read_text())["rounds"][-1]["labeled"] == 80
    assert len((out / "labeled.csv").read_text().splitlines()) == 81


@pytest.mark.parametrize("command", [
    ["run", "--method", "al", "--pool-size", "200", "--budgets", "40,60", "--quiet"],
    ["prune", "--arch", "preact8", "--ratio", "0.5"],
    ["train", "--dataset", "digits", "--arch", "lenet5", "--epochs", "1", "--quiet"],
    ["merge", "--epochs", "1", "--quiet"],
])
def test_another_commands_directory_is_refused(finished_run, capsys, command):
    before = snapshot(finished_run)
    assert_refused(capsys, cli(*command, "--out", finished_run), "holds", "--out")
    assert snapshot(finished_run) == before


def test_prune_into_an_interrupted_run_keeps_it_resumable(finished_run, tmp_path, capsys):
    import shutil

    out = tmp_path / "interrupted"
    shutil.copytree(finished_run, out)
    state = json.loads((out / "state.json").read_text())
    del state["steps"]["r2.target"]
    (out / "state.json").write_text(json.dumps(state))
    before = snapshot(out)
    assert_refused(capsys, cli("prune", "--arch", "preact8", "--ratio", 0.5, "--out", out), "'prunefuse run'")
    assert snapshot(out) == before
    assert cli("run", "--resume", out, "--quiet") == 0
    assert "r2.target" in json.loads((out / "state.json").read_text())["steps"]


def test_a_folder_prunefuse_did_not_make_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert_refused(capsys, cli("prune", "--arch", "preact8", "--ratio", 0.5, "--out", tmp_path), "no prunefuse run")
    assert_refused(capsys, cli("prune", "--arch", "preact8", "--ratio", 0.5, "--out", tmp_path, "--overwrite"),
                   "no prunefuse run")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_live_lock_keeps_a_second_process_out_and_a_stale_one_is_taken_over(tmp_path, capsys):
    out = tmp_path / "p"
    assert cli("prune", "--arch", "preact8", "--ratio", 0.5, "--out", out) == 0
    (out / ".lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    before = snapshot(out)
    assert_refused(capsys, cli("prune", "--arch", "preact8", "--ratio", 0.5, "--out", out), "in use by process")
    assert snapshot(out) == before
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (out / ".lock").write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    assert cli("prune", "--arch", "preact8", "--ratio", 0.5, "--out", out) == 0
    assert not (out / ".lock").exists()


def test_two_processes_writing_one_directory(tmp_path):
    """A second process started on a directory another one is writing is refused before it writes."""
    import subprocess
    import sys
    import time

    out = tmp_path / "shared"
    slow = [a if a != "0" else "100000" for a in RUN]  # --target-steps 100000: the first is still at work
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "prunefuse", *slow, "--out", str(out)], env=env,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "state.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        before_config = (out / "config.json").read_text()
        second = subprocess.run([sys.executable, "-m", "prunefuse", *slow, "--out", str(out)], env=env,
                                capture_output=True, text=True)
        assert first.poll() is None, "the first process ended before the second started"
        assert second.returncode == 2 and "in use by process" in second.stderr, second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert len((out / "attempts.jsonl").read_text().splitlines()) == 1  # the second never started there
        assert json.loads((out / "config.json").read_text()) == json.loads(before_config)
    finally:
        first.kill()
        first.wait()


def test_resume_refuses_flags_it_would_ignore(finished_run, capsys):
    assert_refused(capsys, cli("run", "--resume", finished_run, "--budgets", "0.1,0.3"), "drop --budgets")


def test_compare_with_other_settings_into_the_same_out_is_refused(tmp_path, capsys):
    args = ["compare", "--methods", "random", "--seeds", "0", "--pool-size", "200", "--initial", "20", "--arch",
            "preact8", "--target-epochs", "1", "--target-steps", "0", "--test-size", "50", "--quiet"]
    assert cli(*args, "--budgets", "40,60", "--out", tmp_path / "c") == 0
    before = snapshot(tmp_path / "c")
    assert_refused(capsys, cli(*args, "--budgets", "40,80", "--out", tmp_path / "c"), "another config")
    assert snapshot(tmp_path / "c") == before


@pytest.mark.parametrize("flag,value", [("--seeds", "0,0"), ("--methods", "random,random"),
                                        ("--methods", "prunefuse,prunefuse-nokd"),
                                        ("--methods", "prunefuse-reinit-all,prunefuse@0.5")])
def test_compare_refuses_a_repeated_seed_or_method(tmp_path, capsys, flag, value):
    assert_refused(capsys, cli("compare", flag, value, "--out", tmp_path / "c"), "twice")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("args,words", [
    (["compare", "--methods", "random", "--seeds", "0", "--pool-size", "200", "--budgets", "99999999"],
     "budget 99999999 asks for 99999999 samples but the pool holds 200"),
    (["merge", "--checkpoints", "singles/task0"], "1 checkpoints for 2 tasks"),
    (["merge", "--subset", "300"], "the 300 training samples (--subset 300); lower --val-size or raise --subset"),
])
def test_input_refused_by_a_command_leaves_no_run_that_would_refuse_the_corrected_command(tmp_path, capsys,
                                                                                      args, words):
    assert_refused(capsys, cli(*args, "--out", tmp_path / "out"), words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["prune", "run", "select"])
def test_a_ratio_that_would_empty_a_layer_leaves_nothing_that_refuses_the_corrected_command(tmp_path, pool,
                                                                                           capsys, command):
    labels = write_labels(tmp_path / "labels.csv", 6)
    args = {"prune": ["prune", "--arch", "preact8", "--out", tmp_path / "out", "--ratio"],
            "run": ["run", "--method", "prunefuse", "--dataset", "digits", "--arch", "preact8", "--pool-size", 200,
                    "--initial", 20, "--budgets", "40", "--target-epochs", 1, "--target-steps", 0,
                    "--selector-epochs", 1, "--test-size", 50, "--quiet", "--out", tmp_path / "out",
                    "--prune-ratio"],
            "select": ["select", "--pool", pool, "--labels", labels, "--budget", 3, "--arch", "preact8",
                       "--epochs", 1, "--steps", 2, "--quiet", "--out", tmp_path / "q.csv",
                       "--workspace", tmp_path / "out", "--prune-ratio"]}[command]
    assert_refused(capsys, cli(*args, 0.97), "would leave none of the 16 channels", "at most 0.9375")
    assert not (tmp_path / "out").exists()
    assert cli(*args, 0.5) == 0


@pytest.mark.parametrize("args,words", [
    (["run", "--method", "random", "--prune-ratio", "0.3"], ("--prune-ratio", "random", "only prunefuse reads it")),
    (["run", "--method", "al", "--no-kd"], ("--no-kd", "on al")),
    (["run", "--method", "prunefuse", "--svp-arch", "preact8"], ("--svp-arch", "only svp reads it")),
    (["run", "--method", "prunefuse", "--kd-temperature", "2"], ("--kd-temperature", "distillation is off")),
    (["run", "--method", "prunefuse", "--no-fusion", "--fill", "zero"], ("--fill", "fusion is off")),
    (["run", "--method", "prunefuse", "--t-sync", "3"], ("--t-sync", "with 3 budgets no refresh")),
    (["run", "--method", "prunefuse", "--no-fusion", "--t-sync", "3", "--fill", "zero"], ("--t-sync",)),
    (["run", "--method", "svp", "--svp-epochs", "3", "--selector-epochs", "5"], ("--selector-epochs", "--svp-epochs")),
    (["compare", "--methods", "prunefuse-nokd", "--kd", "--kd-alpha", "0.3"], ("--kd has no effect", "suffix")),
    (["merge", "--importance", "vib", "--allocation", "cost"], ("--allocation", "VIB pruner searches a penalty")),
    (["run", "--method", "random", "--warm-start"], ("--warm-start", "trains no selector")),
    (["run", "--method", "al", "--dataset", "fashion-mnist", "--curve-size", "100"], ("--curve-size", "--curve-every")),
    (["run", "--svp-epochs", "2"], ("--svp-epochs", "prunefuse, al, random")),
    (["compare", "--methods", "random,al", "--prune-steps", "2"], ("--prune-steps", "random, al")),
    (["compare", "--methods", "prunefuse-nokd,al", "--kd"], ("--kd", "prunefuse's suffix in --methods sets it")),
    (["compare", "--methods", "prunefuse@0.7", "--prune-ratio", "0.3"], ("--prune-ratio", "suffix")),
    (["train", "--sync-bn"], ("--sync-bn", "torchrun")),
    (["train", "--shuffle-tiles"], ("--shuffle-tiles", "digits images are not grids", "fashion-mnist-grid")),
    (["merge", "--shuffle-tiles"], ("--shuffle-tiles", "digits images are not grids", "fashion-mnist-grid")),
    (["fit", "--pool", "p.npz", "--labels", "l.csv", "--kd-schedule", "decay"], ("--kd-schedule", "--kd turns it on")),
])
def test_a_flag_that_no_method_run_reads_is_refused(tmp_path, capsys, args, words):
    assert_refused(capsys, cli(*args, "--out", tmp_path / "out"), *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("methods,flag,value", [("random,prunefuse-kd", "--kd-alpha", "0.3"),
                                                ("prunefuse@0.7,prunefuse", "--prune-ratio", "0.3"),
                                                ("prunefuse-nofusion", "--t-sync", "1"),
                                                ("prunefuse-kd", "--kd", None),
                                                ("svp,random", "--svp-epochs", "2"),
                                                ("al,prunefuse-nofusion", "--prune-ratio", "0.3")])
def test_a_flag_one_compared_method_reads_is_accepted(methods, flag, value):
    args = build_parser().parse_args(["compare", "--methods", methods, flag, *([value] if value else []), "--out",
                                      "unused"])
    base = active_config(args)
    refuse_unread(args, [parse_method(m, base) for m in args.methods], base)


@pytest.mark.parametrize("state,words", [
    ({}, "not a run state"), ([], "not a run state"),
    ({"steps": {}, "labeled": [{"index": 10**6, "round": 0, "score": 0.0}]}, "outside the pool"),
    ({"steps": {}, "labeled": [{"index": -1, "round": 0, "score": 0.0}]}, "outside the pool"),
    ({"steps": {}, "labeled": [{"index": 3, "round": 0, "score": 0.0}] * 2}, "labeled twice"),
])
def test_resume_refuses_a_damaged_state(finished_run, tmp_path, capsys, state, words):
    import shutil

    out = tmp_path / "damaged"
    shutil.copytree(finished_run, out)
    (out / "state.json").write_text(json.dumps(state))
    assert_refused(capsys, cli("run", "--resume", out), words)


@pytest.mark.parametrize("edit", ["truncate", "wrong types", "list", "unknown method"])
def test_resume_refuses_a_damaged_config(finished_run, tmp_path, capsys, edit):
    import shutil

    out = tmp_path / "damaged"
    shutil.copytree(finished_run, out)
    text = (out / "config.json").read_text()
    saved = json.loads(text)
    if edit == "truncate":
        text = text[: len(text) // 2]
    elif edit == "wrong types":
        saved["config"]["budgets"] = "lots"
        text = json.dumps(saved)
    elif edit == "unknown method":
        saved["config"]["method"] = "prunefuse2"
        text = json.dumps(saved)
    else:
        text = "[1, 2]"
    (out / "config.json").write_text(text)
    line = assert_refused(capsys, cli("run", "--resume", out), "config.json")
    assert "damaged" in line or "not from 'prunefuse run'" in line, line


def test_a_run_saved_before_a_setting_existed_is_still_its_run(tmp_path, capsys):
    """A setting added since a run was written reads as its default, which keeps that run's behaviour;
    a section that is not a mapping is left for the comparison to refuse."""
    from prunefuse.io.rundir import with_defaults

    saved = {"arch": "lenet5", "train": {"lr": 0.1}}
    assert with_defaults(saved, {"train": {"lr": 0.5, "shuffle_tiles": False}}) == {
        "arch": "lenet5", "train": {"lr": 0.1, "shuffle_tiles": False}}
    assert with_defaults({"train": [1]}, {"train": {"lr": 0.5}}) == {"train": [1]}
    assert with_defaults([1, 2], {"train": {"lr": 0.5}}) == [1, 2]
    train = ["train", "--arch", "lenet5", "--epochs", "1", "--subset", "200", "--quiet", "--out", tmp_path / "run"]
    assert cli(*train) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    del saved["config"]["train"]["shuffle_tiles"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    assert cli(*train) == 0
    assert_refused(capsys, cli(*train[:-2], "--lr", "0.5", "--out", tmp_path / "run"), "another config",
                   "train.lr: 0.1 there, 0.5 now")


# --- tracebacks that used to escape --------------------------------------------------------------
@pytest.mark.parametrize("args,words", [
    (["run", "--budgets", "nan"], "--budgets"), (["run", "--budgets", "inf"], "--budgets"),
    (["run", "--initial", "nan"], "--initial"), (["run", "--initial", "inf"], "--initial"),
    (["run", "--eval-at", "nan"], "--eval-at"), (["run", "--budgets", "a,b"], "'a' is not a number"),
    (["train", "--seed", "-1", "--out", "x"], "--seed"), (["train", "--seed", "1099511627776", "--out", "x"], "--seed"),
    (["train", "--weight-decay", "-5", "--out", "x"], "--weight-decay"), (["run", "--test-size", "-5"], "--test-size"),
    (["run", "--lr", "nan"], "--lr"), (["run", "--lr", "inf"], "--lr"), (["run", "--momentum", "nan"], "--momentum"),
    (["run", "--test-size", "0"], "--test-size"), (["run", "--kd-alpha", "1.5"], "--kd-alpha"),
    (["run", "--kd-temperature", "0"], "--kd-temperature"), (["run", "--round-to", "0"], "--round-to"),
    (["prune", "--arch", "preact8", "--ratio", "1.5", "--out", "x"], "--ratio"),
    (["select", "--pool", "p", "--labels", "l", "--budget", "1", "--out", "q", "--classes", "cat,dog,cat"],
     "--classes: 'cat,dog,cat' names cat twice"),
    (["train", "--device", "mps", "--out", "x"], "unknown device 'mps'"),
])
def test_bad_numbers_are_one_line_at_parse_time(capsys, args, words):
    assert_refused(capsys, cli(*args), words)


def test_output_paths_that_cannot_be_written(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert_refused(capsys, cli("prune", "--arch", "preact8", "--ratio", 0.5, "--out", a_file), "is a file")
    assert_refused(capsys, cli("train", "--arch", "lenet5", "--out", a_file / "sub"), "is a file")
    assert_refused(capsys, cli(*RUN, "--out", a_file), "is a file")
    assert_refused(capsys, cli("prune", "--arch", "preact8", "--ratio", 0.5, "--out", "/proc/prunefuse-x"),
                   "cannot write")
    assert a_file.read_text() == "x"


def test_select_out_naming_a_directory(tmp_path, pool, capsys):
    labels = write_labels(tmp_path / "labels.csv", 6)
    assert_refused(capsys, cli("select", "--pool", pool, "--labels", labels, "--budget", 3, "--out", tmp_path),
                   "is a directory")


def test_channel_map_with_bad_indices(tmp_path):
    from prunefuse.errors import UserError
    from prunefuse.pruning import ChannelMap, prune

    _, cmap = prune(models.create("preact8", 10, 1, 8), 0.5, torch.zeros(1, 1, 8, 8))
    d = cmap.to_dict()
    d["layers"]["conv1"]["out"][0] = 10**5
    with pytest.raises(UserError, match="indices in 0"):
        ChannelMap.from_dict(d)
    d = cmap.to_dict()  # a fresh copy: to_dict never hands out the map's own lists
    d["layers"]["conv1"]["out"][1] = d["layers"]["conv1"]["out"][0]
    with pytest.raises(UserError, match="listed twice"):
        ChannelMap.from_dict(d)


@pytest.mark.parametrize("arrays,words", [
    ({"x": np.zeros((4, 8, 8), np.uint8)}, "no array named 'y'"),
    ({"x": np.full((4, 8, 8), np.nan), "y": np.arange(4)}, "NaN or infinite"),
    ({"x": np.zeros((4, 8, 8), np.complex64), "y": np.arange(4)}, "dtype complex64"),
    ({"x": np.zeros((4, 8, 8), np.uint8), "y": np.array([0, 1.7, 1, 0])}, "not whole numbers"),
    ({"x": np.zeros((0, 8, 8), np.uint8), "y": np.zeros(0)}, "holds no images"),
    ({"x": np.zeros((4, 8, 8), np.uint8), "y": np.zeros(4)}, "same class"),
])
def test_npz_contents_that_cannot_train(tmp_path, capsys, arrays, words):
    np.savez(tmp_path / "d.npz", **arrays)
    assert_refused(capsys, cli("train", "--dataset", "npz", "--data-dir", tmp_path / "d.npz", "--arch", "lenet5",
                               "--epochs", 1, "--out", tmp_path / "run"), words)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case", ["empty folder", "some files", "missing", "a file"])
def test_an_explicit_data_dir_is_the_only_place_searched(tmp_path, capsys, case):
    folder = tmp_path / "idx"
    if case == "empty folder":
        folder.mkdir()
    elif case == "some files":
        folder.mkdir()
        (folder / "train-images-idx3-ubyte.gz").write_bytes(b"")
    elif case == "a file":
        folder.write_text("x")
    line = assert_refused(capsys, cli("train", "--dataset", "fashion-mnist", "--data-dir", folder, "--out",
                                      tmp_path / "run"), str(folder))
    assert "/usr/share" not in line


def test_select_refuses_duplicate_pool_ids_and_short_rows(tmp_path, capsys):
    np.savez(tmp_path / "dup.npz", x=np.zeros((4, 8, 8), np.uint8), ids=np.array(["a", "b", "a", "c"]))
    labels = write_labels(tmp_path / "labels.csv", 0, "id,label\nb,x\nc,y\n")
    assert_refused(capsys, cli("select", "--pool", tmp_path / "dup.npz", "--labels", labels, "--budget", 1, "--out",
                               tmp_path / "q.csv"), "appears twice")
    np.savez(tmp_path / "p.npz", x=np.zeros((4, 8, 8), np.uint8))
    short = write_labels(tmp_path / "short.csv", 0, "id,label\n0,x\n1\n")
    assert_refused(capsys, cli("select", "--pool", tmp_path / "p.npz", "--labels", short, "--budget", 1, "--out",
                               tmp_path / "q.csv"), "fewer columns")
    empty = tmp_path / "empty.npz"
    np.savez(empty, x=np.zeros((0, 8, 8), np.uint8))
    assert_refused(capsys, cli("select", "--pool", empty, "--labels", labels, "--budget", 1, "--out",
                               tmp_path / "q.csv"), "no images")


def test_a_spreadsheet_labels_file_is_accepted(tmp_path, pool):
    from prunefuse.data.pool import read_label_rows

    path = tmp_path / "labels.csv"
    path.write_bytes("\ufeffid,label\r\ns1,cat\r\ns2,dog\r\n".encode())
    assert read_label_rows(path) == [("s1", "cat"), ("s2", "dog")]


# --- every option, generated ---------------------------------------------------------------------
REQUIRED = {"train": ["--dataset", "digits"], "prune": ["--arch", "preact8", "--ratio", "0.5"],
            "run": ["--method", "random"], "compare": [], "merge": [], "flops": ["--arch", "preact8"],
            "select": ["--budget", "3"], "label": [], "fit": [], "datasets": []}
NAMED = ("--arch", "--dataset", "--selection", "--importance", "--allocation", "--schedule", "--fill",
         "--fusion-scope", "--amp", "--method", "--methods", "--tasks", "--svp-arch", "--device")


def options(kind: str) -> list[tuple[str, str]]:
    """(command, flag) for every option whose value is a checked number, or a name from a fixed set."""
    found = []
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command, parser in sub.choices.items():
        for action in parser._actions:
            flag = action.option_strings[-1] if action.option_strings else None
            if flag is None or flag in ("--out", "--help", "--pool", "--labels"):
                continue
            is_number = getattr(action.type, "__name__", "") in ("number", "integer", "list")
            if (kind == "number" and is_number) or (kind == "name" and flag in NAMED):
                found.append((command, flag))
    return found


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """An existing run directory every generated command points --out at, and a pool for select."""
    root = tmp_path_factory.mktemp("guarded")
    assert cli("prune", "--arch", "preact8", "--ratio", 0.5, "--out", root / "out") == 0
    np.savez(root / "pool.npz", x=np.zeros((20, 8, 8), np.uint8), ids=np.array([f"s{i}" for i in range(20)]))
    write_labels(root / "labels.csv", 4)
    return root


def argv(command: str, flag: str, value: str, root) -> list[str]:
    required = list(REQUIRED[command])
    if flag in required:
        i = required.index(flag)
        del required[i:i + 2]
    if command in ("train", "prune", "run", "compare", "merge", "fit"):
        required += ["--out", str(root / "out")]
    if command in ("select", "label", "fit"):
        required += ["--pool", str(root / "pool.npz"), "--labels", str(root / "labels.csv")]
    if command == "select":
        required += ["--out", str(root / "out" / "q.csv")]
    if command == "label":
        required += ["--queue", str(root / "out" / "q.csv")]
    return [command, *required, flag, value]


BAD_NUMBERS = st.one_of(st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "", "1e400", "0x10", "1,,a"]),
                        st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False).map(repr),
                        st.text(alphabet="abcxyz_!@ ", min_size=1, max_size=8))
BAD_NAMES = st.text(alphabet="qwxz_9", min_size=1, max_size=10).map(lambda s: "zz" + s)


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(options("number")), BAD_NUMBERS)
def test_generated_bad_numbers(guarded, capsys, option, value):
    before = snapshot(guarded / "out")
    command, flag = option
    assert_refused(capsys, cli(*argv(command, flag, value, guarded)))
    assert snapshot(guarded / "out") == before


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(options("name")), BAD_NAMES)
def test_generated_unknown_names(guarded, capsys, option, value):
    before = snapshot(guarded / "out")
    command, flag = option
    assert_refused(capsys, cli(*argv(command, flag, value, guarded)))
    assert snapshot(guarded / "out") == before


def test_every_command_has_options_the_generated_tests_cover():
    numbers = {c for c, _ in options("number")}
    assert {"train", "prune", "run", "compare", "merge", "flops", "select"} <= numbers
    assert set(COMMANDS) >= numbers
