"""Tables and plots for active-learning runs: one function per artefact, shared by ``run`` and
``compare`` (a single run is a comparison of one method over one seed)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from .storage import atomic_write, write_text


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def group_by_label(results: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        groups[r["label"]].append(r)
    return dict(groups)


def accuracy_table(results: list[dict]) -> str:
    """Accuracy (%) at each evaluated budget, mean ± std over seeds, with selection cost."""
    groups = group_by_label(results)
    budgets = sorted({r["labeled"] for res in results for r in res["rounds"] if "accuracy" in r})
    head = ["method", "seeds"] + [f"acc@{b}" for b in budgets] + ["selection s", "selection GFLOPs",
                                                                   "target s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, runs in groups.items():
        cells = [label, str(len(runs))]
        for b in budgets:
            cells.append(mean_std([r["accuracy"] for res in runs for r in res["rounds"]
                                   if r["labeled"] == b and "accuracy" in r]))
        cells.append(f"{statistics.mean(res['selection_seconds'] for res in runs):.1f}")
        cells.append(f"{statistics.mean(res['selection_flops'] for res in runs) / 1e9:.2f}")
        cells.append(f"{statistics.mean(res['target_seconds'] for res in runs):.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rounds_table(result: dict) -> str:
    head = ["round", "labeled", "selector train s", "scoring s", "selection s", "selection GFLOPs", "accuracy"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rounds"]:
        acc = f"{100 * r['accuracy']:.2f}" if "accuracy" in r else "-"
        lines.append(f"| {r['round']} | {r['labeled']} | {r['selector_training_seconds']:.2f} | "
                     f"{r['pool_scoring_seconds']:.2f} | {r['selection_step_seconds']:.3f} | "
                     f"{r['selection_flops'] / 1e9:.3f} | {acc} |")
    return "\n".join(lines) + "\n"


def speedup_lines(results: list[dict]) -> str:
    """Selection cost of dense AL over each other method (wall-clock and FLOPs)."""
    groups = group_by_label(results)
    if "al" not in groups:
        return ""
    al_s = statistics.mean(r["selection_seconds"] for r in groups["al"])
    al_f = statistics.mean(r["selection_flops"] for r in groups["al"])
    lines = []
    for label, runs in groups.items():
        if label in ("al", "random"):
            continue
        s = statistics.mean(r["selection_seconds"] for r in runs)
        f = statistics.mean(r["selection_flops"] for r in runs)
        lines.append(f"- al / {label}: {al_s / max(s, 1e-9):.2f}x wall-clock, {al_f / max(f, 1):.2f}x FLOPs")
    return "\n".join(lines) + "\n" if lines else ""


def plot(path: Path, draw) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    draw(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def write_plots(out: Path, results: list[dict]) -> list[str]:
    groups = group_by_label(results)

    def series(runs, key):
        points = defaultdict(list)
        for res in runs:
            for r in res["rounds"]:
                if "accuracy" in r:
                    points[r["labeled"]].append((r["accuracy"], res[key] if key else r["labeled"]))
        xs = sorted(points)
        return xs, [statistics.mean(a for a, _ in points[x]) * 100 for x in xs]

    def budget(ax):
        for label, runs in groups.items():
            xs, ys = series(runs, None)
            ax.plot(xs, ys, marker="o", label=label)
        ax.set_xlabel("labeled samples")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("Accuracy against budget")

    def cost(ax):
        for label, runs in groups.items():
            flops = statistics.mean(r["selection_flops"] for r in runs) / 1e9
            acc = statistics.mean(r["final_accuracy"] for r in runs) * 100
            ax.scatter([max(flops, 1e-6)], [acc], label=label, s=40)
        ax.set_xscale("log")
        ax.set_xlabel("selection GFLOPs (log)")
        ax.set_ylabel("final test accuracy (%)")
        ax.set_title("Accuracy against selection cost")

    def curve(ax):
        for label, runs in groups.items():
            curves = [r["target_curve"] for res in runs for r in res["rounds"] if r.get("target_curve")]
            if curves:
                n = min(len(c) for c in curves)
                mean = [statistics.mean(c[i] for c in curves) * 100 for i in range(n)]
                fused = "fused" if label.startswith("prunefuse") and "nofusion" not in label else "not fused"
                ax.plot(range(1, n + 1), mean, label=f"{label} ({fused})")
        ax.set_xlabel("target epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("Target training at the final budget")

    names = {"accuracy_vs_budget.png": budget, "accuracy_vs_selection_flops.png": cost,
             "target_curve.png": curve}
    for name, draw in names.items():
        plot(out / name, draw)
    return list(names)


def write_run_report(out: Path, result: dict) -> None:
    plots = write_plots(out, [result])
    text = (f"# {result['label']} on {result['dataset']} ({result['arch']}), seed {result['seed']}\n\n"
            f"Pool {result['pool']}, test {result['test']}. Selector {result['selector_flops_per_sample'] / 1e6:.2f} "
            f"MFLOPs/sample, target {result['target_flops_per_sample'] / 1e6:.2f} MFLOPs/sample.\n\n"
            + rounds_table(result) + "\n" + phase_table(result) + "\n"
            + "".join(f"![{p}]({p})\n" for p in plots))
    write_text(out / "report.md", text)


def phase_table(result: dict) -> str:
    lines = ["| phase | seconds | GFLOPs |", "|---|---|---|"]
    for name, p in result["phases"].items():
        lines.append(f"| {name} | {p['seconds']:.2f} | {p['flops'] / 1e9:.3f} |")
    return "\n".join(lines) + "\n"


def write_comparison_report(out: Path, results: list[dict]) -> str:
    plots = write_plots(out, results)
    table = accuracy_table(results)
    text = "# Comparison\n\n" + table + "\n" + speedup_lines(results) + "\n" + "".join(
        f"![{p}]({p})\n" for p in plots)
    write_text(out / "report.md", text)
    return table + speedup_lines(results)
