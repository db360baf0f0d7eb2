"""The merge run's report: per-subset FLOPs and latency per method, task accuracies, and a plot."""

from __future__ import annotations

from pathlib import Path

from ..io.figures import plot
from ..io.storage import write_text


def subset_label(tasks: list[int]) -> str:
    return "+".join(f"T{t}" for t in tasks)


def merge_tables(results: dict) -> str:
    methods = results["methods"]
    names = list(methods)
    subsets = next(iter(methods.values()))["subsets"]
    batches = list(subsets[0]["latency_ms"])
    lines = ["| tasks | " + " | ".join(f"{m} MFLOPs" for m in names) + " | "
             + " | ".join(f"{m} ms@{b}" for b in batches for m in names) + " |",
             "|" + "---|" * (1 + (1 + len(batches)) * len(names))]
    for i, s in enumerate(subsets):
        flops = " | ".join(f"{methods[m]['subsets'][i]['flops'] / 1e6:.3f}" for m in names)
        ms = " | ".join(f"{methods[m]['subsets'][i]['latency_ms'][b]:.2f}" for b in batches for m in names)
        lines.append(f"| {subset_label(s['tasks'])} | {flops} | {ms} |")
    n = len(results["tasks"])
    # test accuracy per task; the tolerance is judged on the validation split, so its worst shortfall is beside it
    acc = ["", "| method | " + " | ".join(f"T{t} test acc" for t in range(n))
           + " | worst task below on validation (points) | within tolerance |", "|" + "---|" * (3 + n)]
    single = results["single_task"]["test_accuracy"]
    acc.append("| single-task | " + " | ".join(f"{100 * single[t]:.2f}" for t in range(n)) + " | | |")
    for m in names:
        a = methods[m]["test_accuracy"]
        acc.append(f"| {m} | " + " | ".join(f"{100 * a[t]:.2f}" for t in range(n))
                   + f" | {methods[m]['worst_val_drop']:.2f} | {'yes' if methods[m]['within_tolerance'] else 'no'} |")
    missed = [m for m in names if not methods[m]["within_tolerance"]]
    # pruning to the tolerance keeps only steps within it, so a network ends below it only if it started there;
    # pruning to a budget, or retraining, may end there
    budget, epochs = results["pruning"]["budget"], results["pruning"]["retrain_epochs"]
    late = [m for m in missed if methods[m]["pruned"] and (budget is not None or epochs)]
    if len(late) < len(missed):
        acc += ["", f"{', '.join(m for m in missed if m not in late)}: below the tolerance on the validation split "
                "even before pruning, so left unpruned; their FLOPs are not comparable. Train longer (--epochs, "
                "--merge-epochs) or raise --tolerance."]
    if late:
        how = (f"pruning to {budget} of the FLOPs (--prune-budget) and --retrain-epochs {epochs}. Raise either."
               if budget is not None else f"pruning and --retrain-epochs {epochs}. Retrain longer, or drop it.")
        acc += ["", f"{', '.join(late)}: below the tolerance on the validation split after {how}"]
    ratios = [f"- {k}: {v['all_tasks']:.2f}x on all tasks, {v['mean_over_subsets']:.2f}x averaged over subsets, "
              f"{v['mean_over_single_tasks']:.2f}x averaged over single tasks, {v['worst_subset']:.2f}x on the subset "
              "least favourable to pam" for k, v in results.get("ratios", {}).items()]
    acc += ["", grouping_table(results)]
    return "\n".join(lines + acc + ([""] + ratios + cheaper_than_pam(methods) if ratios else [])) + "\n"


def cheaper_than_pam(methods: dict) -> list[str]:
    """The subsets on which a baseline costs less than PAM, said plainly rather than left to the table."""
    lines = []
    for name, m in methods.items():
        if name == "pam":
            continue
        beaten = [(s["tasks"], s["flops"] / p["flops"]) for s, p in zip(m["subsets"], methods["pam"]["subsets"],
                                                                          strict=True) if s["flops"] < p["flops"]]
        if beaten:
            worst = min(beaten, key=lambda b: b[1])
            lines.append(f"- {name} is cheaper than pam on {len(beaten)} of {len(m['subsets'])} subsets "
                         f"(single tasks: {sum(len(t) == 1 for t, _ in beaten)}); most on "
                         f"{subset_label(worst[0])}, {worst[1]:.2f}x pam's FLOPs")
    return lines


def widths_text(widths: list[dict[str, int]]) -> str:
    """``shared+t0+t1 / ...`` per layer."""
    return " / ".join("+".join(str(w[g]) for g in w) for w in widths)


def grouping_table(results: dict) -> str:
    """Neurons per group and layer (shared + one group per task), as merged and after pruning."""
    lines = ["Neurons per layer, shared + each task's group:", "", "| method | merged | pruned |", "|---|---|---|"]
    for name, m in results["methods"].items():
        pruned = m.get("widths")
        if not pruned:
            continue
        pruned_text = ("; ".join(widths_text(w) for w in pruned) if pruned and isinstance(pruned[0], list)
                       else widths_text(pruned))
        lines.append(f"| {name} | {widths_text(m['merged_widths']) if m.get('merged_widths') else '-'} | "
                     f"{pruned_text} |")
    return "\n".join(lines) + "\n"


def write_merge_report(out: Path, results: dict) -> None:
    methods = results["methods"]
    subsets = [s["tasks"] for s in next(iter(methods.values()))["subsets"]]

    def draw(ax):
        xs = range(len(subsets))
        for name, m in methods.items():
            ax.plot(xs, [s["flops"] / 1e6 for s in m["subsets"]], marker="o", label=name)
        ax.set_xticks(list(xs), [subset_label(s) for s in subsets], rotation=60 if len(subsets) > 8 else 0, fontsize=7)
        ax.set_xlabel("task subset")
        ax.set_ylabel("MFLOPs per image")
        ax.set_title(f"{results['arch']} on {results['dataset']}: cost of each task subset after pruning")

    plot(out / "flops_per_subset.png", draw)
    header = (f"# Merge: {results['arch']} on {results['dataset']}, tasks "
              f"{' / '.join('-'.join(map(str, t)) for t in results['tasks'])}\n\n"
              f"{results['flops_convention']}; latency: median forward of one batch on the CPU.\n\n")
    write_text(out / "report.md", header + merge_tables(results) + "\n![FLOPs per subset](flops_per_subset.png)\n")
