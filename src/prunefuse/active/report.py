"""Tables and plots for active-learning runs: one function per artefact, shared by ``run`` and
``compare`` (a single run is a comparison of one method over one seed)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from ..io.figures import plot
from ..io.storage import write_text
from .stats import accuracy_by_budget, area_under_curve, band, mean_interval, paired_differences

REFERENCES = ("random", "al")  # every method is compared seed by seed against these


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


def evaluated_budgets(results: list[dict]) -> list[int]:
    return sorted({b for res in results for b in accuracy_by_budget(res)})


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def accuracy_table(results: list[dict]) -> str:
    """Accuracy (%) at each evaluated budget and the area under the curve, mean ± std over seeds."""
    budgets = evaluated_budgets(results)
    rows = []
    for label, runs in group_by_label(results).items():
        cells = [label, runs[0].get("settings", ""), str(len(runs))]
        per_run = [accuracy_by_budget(r) for r in runs]
        cells += [mean_std([p[b] for p in per_run if b in p]) for b in budgets]
        cells.append(mean_std([a for a in (area_under_curve(p) for p in per_run) if a is not None]))
        rows.append(cells)
    return table(["method", "settings", "seeds"] + [f"acc@{b}" for b in budgets] + ["AUC"], rows)


def difference_table(results: list[dict], reference: str) -> str:
    """Paired differences (points) against ``reference`` with 95% intervals over the seeds both have."""
    groups = group_by_label(results)
    if reference not in groups or len(groups) < 2:
        return ""
    budgets = evaluated_budgets(results)
    rows = []
    for label, runs in groups.items():
        if label == reference:
            continue
        diffs = paired_differences(runs, groups[reference])
        seeds = max((d.n for d in diffs.values()), default=0)
        rows.append([label, str(seeds)] + [diffs[b].text() if b in diffs else "-" for b in budgets]
                    + [diffs["auc"].text() if "auc" in diffs else "-"])
    return (f"Paired difference against {reference}, in points (mean [95% interval] over seeds):\n\n"
            + table(["method", "seeds"] + [f"Δ@{b}" for b in budgets] + ["ΔAUC"], rows))


def cost_table(results: list[dict]) -> str:
    """Seconds and GFLOPs of every phase, mean over seeds. Selection is selector training, pool scoring
    and the selection step, the same for every method; the final selector fit (fusion's source and KD's
    teacher), target training and evaluation each have their own column."""
    def mean(runs: list[dict], key: str) -> float:
        return statistics.mean(r.get(key, 0.0) for r in runs)

    def phase_flops(runs: list[dict], name: str) -> float:
        return statistics.mean(r["phases"].get(name, {}).get("flops", 0) for r in runs) / 1e9

    rows = [[label, f"{mean(runs, 'selection_seconds'):.1f}", f"{mean(runs, 'selection_flops') / 1e9:.1f}",
             f"{mean(runs, 'final_selector_fit_seconds'):.1f}", f"{phase_flops(runs, 'final_selector_fit'):.1f}",
             f"{mean(runs, 'target_seconds'):.1f}", f"{phase_flops(runs, 'target_training'):.1f}",
             f"{mean(runs, 'evaluation_seconds'):.1f}", f"{mean(runs, 'total_seconds'):.1f}",
             f"{mean(runs, 'total_flops') / 1e9:.1f}"] for label, runs in group_by_label(results).items()]
    return table(["method", "selection s", "selection GFLOPs", "final selector fit s", "final fit GFLOPs",
                  "target s", "target GFLOPs", "evaluation s", "total s", "total GFLOPs"], rows)


def rounds_table(result: dict) -> str:
    head = ["round", "labeled", "selector train s", "scoring s", "selection s", "selection GFLOPs", "selector acc",
            "target s", "accuracy"]

    def pct(r: dict, key: str) -> str:
        return f"{100 * r[key]:.2f}" if key in r else "-"

    rows = [[str(r["round"]), str(r["labeled"]), f"{r['selector_training_seconds']:.2f}",
             f"{r['pool_scoring_seconds']:.2f}", f"{r['selection_step_seconds']:.3f}",
             f"{r['selection_flops'] / 1e9:.3f}", pct(r, "selector_accuracy"),
             f"{r['target_seconds']:.2f}" if "target_seconds" in r else "-", pct(r, "accuracy")]
            for r in result["rounds"]]
    return table(head, rows)


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


def write_plots(out: Path, results: list[dict]) -> list[str]:
    groups = group_by_label(results)

    several = max(len(r) for r in groups.values()) > 1

    def budget(ax):
        for label, runs in groups.items():
            xs, mean, low, high = band(runs)
            name = f"{label} ({len(runs)} seeds)" if several else label
            line = ax.plot(xs, [100 * m for m in mean], marker="o", label=name)[0]
            if len(runs) > 1:
                ax.fill_between(xs, [100 * v for v in low], [100 * v for v in high], color=line.get_color(),
                                alpha=0.15, linewidth=0)
        ax.set_xlabel("labeled samples")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("Accuracy against budget" + (" (band: 95% interval over seeds)" if several else ""), fontsize=9)

    def cost(ax):
        for label, runs in groups.items():
            flops = statistics.mean(r["selection_flops"] for r in runs) / 1e9
            acc = statistics.mean(r["final_accuracy"] for r in runs) * 100
            ax.scatter([max(flops, 1e-6)], [acc], label=label, s=40)
        ax.set_xscale("log")
        ax.set_xlabel("selection GFLOPs (log)")
        ax.set_ylabel("final test accuracy (%)")
        ax.set_title("Accuracy against selection cost")

    names = {"accuracy_vs_budget.png": budget, "accuracy_vs_selection_flops.png": cost}
    curves = {label: [r["target_curve"] for res in runs for r in res["rounds"] if r.get("target_curve")]
              for label, runs in groups.items()}
    if any(curves.values()):
        def curve(ax):
            for label, runs in curves.items():
                if runs:
                    epochs = sorted({p["epoch"] for c in runs for p in c})
                    mean = [mean_interval([p["accuracy"] for c in runs for p in c if p["epoch"] == e]).mean
                            for e in epochs]
                    ax.plot(epochs, [100 * m for m in mean], marker=".", label=label)
            ax.set_xlabel("target epoch")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title("Target training at the final budget")

        names["target_curve.png"] = curve
    for name, draw in names.items():
        plot(out / name, draw)
    return list(names)


def phase_table(result: dict) -> str:
    return table(["phase", "seconds", "GFLOPs"], [[name, f"{p['seconds']:.2f}", f"{p['flops'] / 1e9:.3f}"]
                                                  for name, p in result["phases"].items()])


def write_run_report(out: Path, result: dict) -> None:
    plots = write_plots(out, [result])
    text = (f"# {result['label']} on {result['dataset']} ({result['arch']}), seed {result['seed']}\n\n"
            f"{result.get('settings', '')}. Pool {result['pool']}, test {result['test']}. Selector "
            f"{result['selector_flops_per_sample'] / 1e6:.2f} MFLOPs/sample, target "
            f"{result['target_flops_per_sample'] / 1e6:.2f} MFLOPs/sample.\n\n"
            + rounds_table(result) + "\n" + phase_table(result) + "\n"
            + "".join(f"![{p}]({p})\n" for p in plots))
    write_text(out / "report.md", text)


def comparison_text(results: list[dict]) -> str:
    """Every table of a comparison: accuracy, paired differences, phase costs and speed-ups."""
    parts = [accuracy_table(results)] + [difference_table(results, ref) for ref in REFERENCES]
    parts += [cost_table(results), speedup_lines(results)]
    return "\n".join(p for p in parts if p)


def write_comparison_report(out: Path, results: list[dict]) -> str:
    plots = write_plots(out, results)
    text = comparison_text(results)
    write_text(out / "report.md", "# Comparison\n\n" + text + "\n" + "".join(f"![{p}]({p})\n" for p in plots))
    return text
