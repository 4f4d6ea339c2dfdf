"""Tables of results: comparison (paper Tables 2 and 3), efficiency (section 4.7), design-choice
frequencies (Table 4) and correlated attributes (Table 5); rendered as Markdown, HTML or CSV."""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from galm.report.method_notes import method_notes

__all__ = [
    "Table", "baseline_features_note", "cells_csv", "comparison_table", "efficiency_table", "experiment_tables",
    "failures_table", "html_table", "markdown_table", "mean_std", "method_order", "results_csv", "scenario_list",
]


@dataclass
class Table:
    """A titled grid of strings; ``bold`` holds the (row, column) cells to emphasise."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]] = field(default_factory=set)
    note: str = ""


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """GitHub-flavoured Markdown; bold cells wrapped in ``**``."""
    if not table.rows:
        return "_(no rows)_"
    lines = ["| " + " | ".join(_md_escape(h) for h in table.headers) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(table.headers) - 1)) + "|"]
    for r, row in enumerate(table.rows):
        cells = [f"**{_md_escape(v)}**" if (r, c) in table.bold and v else _md_escape(v) for c, v in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def html_table(table: Table) -> str:
    """An HTML ``<table>``; bold cells in ``<strong>``."""
    if not table.rows:
        return "<p><em>(no rows)</em></p>"
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.headers) + "</tr></thead>",
           "<tbody>"]
    for r, row in enumerate(table.rows):
        cells = []
        for c, v in enumerate(row):
            text = html.escape(str(v))
            cells.append(f"<td><strong>{text}</strong></td>" if (r, c) in table.bold and v else f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


# --------------------------------------------------------------------------- experiment records


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the finite values."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return float("nan"), float("nan"), 0
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return float(np.mean(finite)), std, len(finite)


def method_order(records: Sequence[dict[str, Any]], spec: Mapping[str, Any] | None = None) -> list[str]:
    """Methods in the spec's order, then any others found in the records."""
    order = list(spec["methods"]) if spec is not None else []
    for record in records:
        if record["method"] not in order:
            order.append(record["method"])
    return order


def scenario_list(records: Sequence[dict[str, Any]], spec: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Scenario descriptions (name, kind, domain | source, target) in the spec's order."""
    if spec is not None:
        return [dict(s) for s in spec["scenarios"]]
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        seen.setdefault(record["scenario"], record["spec"]["scenario"])
    return list(seen.values())


def domain_label(domain: str) -> str:
    """A domain as tables name it: a synthetic name as it is, a prepared cache by its folder name
    (never an absolute path), each part of a `+`-joined source alike."""
    return "+".join(Path(part).name if "/" in part or "\\" in part else part for part in domain.split("+"))


def _scenario_header(scenario: dict[str, Any]) -> str:
    if scenario["kind"] == "transfer":
        return f"{scenario['name']} ({domain_label(scenario['source'])}→{domain_label(scenario['target'])})"
    return f"{scenario['name']} ({domain_label(scenario['domain'])})"


def _expected_seeds(records: Sequence[dict[str, Any]], spec: Mapping[str, Any] | None, method: str, scenario: str) -> int:
    if spec is not None:
        cells = spec.get("cells")
        if isinstance(cells, Mapping):  # the grid's own cells: 0 where a method does not run (ft, afs off transfer)
            return sum(1 for key in cells if key.split("/")[:2] == [scenario, method])
        return len(spec["seeds"])
    return sum(1 for r in records if r["method"] == method and r["scenario"] == scenario)


def _maucs(records: Sequence[dict[str, Any]], method: str, scenario: str) -> list[float]:
    return [r["results"]["mauc"] for r in records
            if r["status"] == "done" and r["method"] == method and r["scenario"] == scenario]


def comparison_table(records: Sequence[dict[str, Any]], spec: Mapping[str, Any] | None, kind: str, title: str) -> Table | None:
    """Rows methods, columns the scenarios of `kind`, cells mAUC (%) mean ± std over seeds; best bold."""
    scenarios = [s for s in scenario_list(records, spec) if s["kind"] == kind]
    if not scenarios:
        return None
    methods = method_order(records, spec)
    rows: list[list[str]] = []
    means = np.full((len(methods), len(scenarios)), np.nan)
    for i, method in enumerate(methods):
        row = [method]
        for j, scenario in enumerate(scenarios):
            mean, std, n = mean_std(_maucs(records, method, scenario["name"]))
            expected = _expected_seeds(records, spec, method, scenario["name"])
            if method == "ft" and kind != "transfer" or (n == 0 and expected == 0):
                row.append("n/a")
                continue
            if n == 0:
                row.append("—")
                continue
            means[i, j] = mean
            text = f"{100 * mean:.1f} ± {100 * std:.1f}"
            if n < expected:
                text += f" ({n}/{expected} seeds)"
            row.append(text)
        rows.append(row)
    bold = set()
    for j in range(len(scenarios)):
        column = means[:, j]
        if np.isfinite(column).any():
            best = np.nanmax(column)
            bold |= {(i, j + 1) for i in range(len(methods)) if column[i] == best}
    note = "mAUC (%) on the test classes, mean ± sample std over seeds; best per column in bold."
    features = baseline_features_note([r for r in records if r["kind"] == kind], methods)
    return Table(title, ["method", *[_scenario_header(s) for s in scenarios]], rows, bold,
                 note=" ".join(filter(None, [note, features, method_notes(methods)])))


def baseline_features_note(records: Sequence[dict[str, Any]], order: Sequence[str] = ()) -> str:
    """A footnote naming the features the feature-based baselines read, from their results records
    (methods listed in ``order``, then by first appearance)."""
    methods: list[str] = []
    networks: set[str] = set()
    kinds: set[str] = set()
    with_source: list[str] = []
    for record in records:
        results = record.get("results") or {}
        if record["status"] != "done" or "features_from" not in results:
            continue
        if record["method"] not in methods:
            methods.append(record["method"])
        parts = str(results["features_from"]).split("/")
        networks.add(parts[1] if len(parts) == 3 else str(results["features_from"]))
        features = results.get("features") or {}
        layer = str(features.get("layer") or "conv3").replace("conv", "Conv-")
        detail = [f"{features['pooling']}-pooled"] if features.get("pooling") else []
        detail += [f"{features['dimensions']}-d"] if features.get("dimensions") else []
        kinds.add(f"{layer} features ({', '.join(detail)})" if detail else f"{layer} features")
        if "source_domain" in results and record["method"] not in with_source:
            with_source.append(record["method"])
    if not methods:
        return ""
    rank = {m: i for i, m in enumerate(order)}
    methods.sort(key=lambda m: rank.get(m, len(rank)))
    text = (f"Feature-based baselines ({', '.join(methods)}) read {' / '.join(sorted(kinds))} of the trained "
            f"trunk of the {' / '.join(sorted(networks))} cell of the same scenario and seed, not the paper's "
            "4,096-d VGG16 features (nothing pretrained is available here; galm.baselines takes any local "
            "feature extractor or xlsa17's ResNet-101 features).")
    if with_source:
        verb, their = ("uses", "its") if len(with_source) == 1 else ("use", "their")
        text += (f" {', '.join(with_source)} also {verb} that trunk's features of the source domain's images, "
                 f"where {their} source attribute classifiers are trained.")
    return text


def efficiency_table(records: Sequence[dict[str, Any]], spec: Mapping[str, Any] | None = None) -> Table:
    """Mean wall-clock seconds and architecture evaluations per method, by scenario kind."""
    methods = method_order(records, spec)
    rows = []
    for method in methods:
        done = [r for r in records if r["method"] == method and r["status"] == "done"]
        row = [method, str(len(done))]
        for kind in ("semantic", "transfer"):
            of_kind = [r["results"] for r in done if r["kind"] == kind]
            if of_kind:
                row += [f"{np.mean([r['seconds'] for r in of_kind]):.1f}",
                        f"{np.mean([r.get('evaluations', 0) for r in of_kind]):.0f}"]
            else:
                row += ["—", "—"]
        rows.append(row)
    return Table("Efficiency (section 4.7)",
                 ["method", "finished cells", "semantic: mean s", "semantic: mean evaluations",
                  "transfer: mean s", "transfer: mean evaluations"], rows,
                 note="Seconds are wall-clock per cell (search, retrain and scoring; transfer GALM includes its "
                      "source search). Evaluations count (attribute, head) pairs scored on validation data.")


def failures_table(records: Sequence[dict[str, Any]]) -> Table | None:
    """Cells that failed or did not finish, with the error."""
    rows = []
    for r in records:
        if r["status"] == "done":
            continue
        error = r.get("error", {})
        rows.append([f"{r['scenario']}/{r['method']}/seed{r['seed']}", r["status"],
                     error.get("type", ""), error.get("message", "")[:200]])
    if not rows:
        return None
    return Table("Cells without results", ["cell", "status", "error", "message"], rows)


def experiment_tables(records: Sequence[dict[str, Any]], spec: Mapping[str, Any] | None = None) -> list[Table]:
    """Table 2 (semantic), Table 3 (transfer), efficiency and, if any, failed cells."""
    tables = [
        comparison_table(records, spec, "semantic", "Table 2: semantic attribute learning (mAUC %, unseen classes)"),
        comparison_table(records, spec, "transfer", "Table 3: non-semantic attribute transfer (mAUC %, target test classes)"),
        efficiency_table(records, spec),
        failures_table(records),
    ]
    return [t for t in tables if t is not None]


def results_csv(records: Sequence[dict[str, Any]], spec: Mapping[str, Any] | None = None) -> str:
    """Wide CSV: one row per method, per scenario mAUC mean, std and number of seeds (mAUC in [0, 1])."""
    scenarios = scenario_list(records, spec)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["method"]
    for s in scenarios:
        header += [f"{s['name']}:mauc_mean", f"{s['name']}:mauc_std", f"{s['name']}:n"]
    writer.writerow(header)
    for method in method_order(records, spec):
        row: list[Any] = [method]
        for s in scenarios:
            mean, std, n = mean_std(_maucs(records, method, s["name"]))
            row += ["" if n == 0 else f"{mean:.6f}", "" if n == 0 else f"{std:.6f}", n]
        writer.writerow(row)
    return buffer.getvalue()


def cells_csv(records: Sequence[dict[str, Any]]) -> str:
    """Long CSV: one row per cell with status, mAUC, seconds and evaluations."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["scenario", "kind", "method", "seed", "status", "mauc", "seconds", "evaluations"])
    for r in records:
        results = r.get("results", {})
        writer.writerow([r["scenario"], r["kind"], r["method"], r["seed"], r["status"],
                         results.get("mauc", ""), results.get("seconds", ""), results.get("evaluations", "")])
    return buffer.getvalue()
