import json
import subprocess
import sys

import pytest

from prunefuse.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "prunefuse", *args], capture_output=True, text=True)


def test_flops_json(capsys):
    assert main(["flops", "--arch", "preact56", "--input-shape", "3,32,32", "--num-classes", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arch"] == "preact56" and out["flops"] == 2 * out["macs"] and out["macs"] == 125_747_840


def test_flops_with_prune_ratios(capsys):
    assert main(["flops", "--arch", "preact20", "--prune-ratios", "0.5,0.7", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["ratio"] for e in out["pruned"]] == [0.5, 0.7]
    assert 3.5 < out["pruned"][0]["flops_ratio"] < out["pruned"][1]["flops_ratio"]


def test_train_writes_a_complete_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--arch", "lenet5", "--epochs", "2", "--out", str(out),
                 "--quiet", "--subset", "400"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["train_samples"] == 400 and 0 <= results["test_accuracy"] <= 1
    for f in ("config.json", "metrics.jsonl", "model.safetensors", "model.json"):
        assert (out / f).is_file()
    assert json.loads((out / "config.json").read_text())["config"]["train"]["epochs"] == 2


def test_prune_command_writes_a_loadable_pruned_checkpoint(tmp_path, capsys):
    from prunefuse.io.checkpoint import load_model

    assert main(["prune", "--arch", "preact8", "--ratio", "0.5", "--out", str(tmp_path)]) == 0
    model, meta = load_model(tmp_path / "pruned")
    assert meta["channel_map"]["ratio"] == 0.5 and (tmp_path / "pruned.map.json").is_file()
    assert model.conv1.out_channels == len(meta["channel_map"]["layers"]["conv1"]["out"])


@pytest.mark.parametrize("args,message", [
    (["train", "--arch", "resnet9000", "--out", "x"], "unknown architecture"),
    (["train", "--dataset", "cifar10", "--out", "x"], "needs --data-dir"),
    (["prune", "--arch", "preact8", "--ratio", "1.5", "--out", "x"], "out of range"),
    (["flops", "--arch", "preact8", "--input-shape", "3,32"], "C,H,W"),
    (["run", "--method", "al", "--budgets", "0.1,5000"], "pool holds"),
    (["run", "--resume", "/nonexistent"], "no run to resume"),
])
def test_bad_input_is_one_line_with_exit_code_2(args, message):
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr


def test_checkpoint_from_another_model_is_refused(tmp_path):
    assert main(["prune", "--arch", "preact8", "--ratio", "0.5", "--out", str(tmp_path / "a")]) == 0
    meta = json.loads((tmp_path / "a" / "pruned.json").read_text())
    meta["arch"] = "preact14"
    (tmp_path / "a" / "pruned.json").write_text(json.dumps(meta))
    r = run_cli("prune", "--checkpoint", str(tmp_path / "a"), "--arch", "x", "--ratio", "0.3", "--out",
                str(tmp_path / "b"))
    assert r.returncode == 2 and "does not fit" in r.stderr and "Traceback" not in r.stderr


def test_prune_takes_the_network_from_its_checkpoint_and_refuses_flags_that_disagree(tmp_path, capsys):
    from prunefuse import models
    from prunefuse.io import checkpoint
    from prunefuse.merge.grouped import from_classifier

    net = from_classifier(models.create("lenet5", 3, 1, 28), "lenet5", (1, 28, 28))
    checkpoint.save(tmp_path / "task0", net, {"grouped": net.spec(), "arch": "lenet5", "input_shape": [1, 28, 28]})
    assert main(["prune", "--arch", "preact8", "--num-classes", "4", "--input-shape", "1,8,8", "--ratio", "0.5",
                 "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    for source, arch, words in ((tmp_path / "task0", None, "from 'prunefuse merge'"),
                                (tmp_path / "a" / "pruned", "preact20", "holds a preact8, not the --arch preact20")):
        flags = ["--arch", arch] if arch else []
        assert main(["prune", "--checkpoint", str(source), *flags, "--ratio", "0.3", "--out", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert main(["prune", "--checkpoint", str(tmp_path / "a" / "pruned"), "--num-classes", "3", "--ratio", "0.3",
                 "--out", str(tmp_path / "b")]) == 2
    assert "drop --num-classes" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    assert main(["prune", "--checkpoint", str(tmp_path / "a" / "pruned"), "--ratio", "0.3", "--out",
                 str(tmp_path / "b")]) == 0
    saved = json.loads((tmp_path / "b" / "config.json").read_text())["config"]
    assert (saved["arch"], saved["num_classes"], saved["input_shape"]) == ("preact8", 4, [1, 8, 8])  # the checkpoint's


def test_datasets_lists_the_bundled_default(capsys):
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["digits"]["found"] and "cifar10" in rows


def test_help_on_every_command():
    for cmd in ("train", "flops", "prune", "run", "compare", "select", "datasets"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
