"""The sections of a report, each built from run files only; a section whose inputs are missing says so."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from galm.report.html import Figure, Section, Text
from galm.report.inputs import (
    ReportInputs,
    _arm_files,
    _read,
    _run_domain,
    domain_similarity,
)
from galm.report.tables import Table, experiment_tables, mean_std, scenario_list
from galm.runs.architectures import architecture_from_record
from galm.runs.directory import RunDirectory
from galm.runs.metrics import read_metrics
from galm.space import SearchSpace, choice_frequencies

SECTION_TITLES = {
    "comparison": "Comparison with baselines (Tables 2 and 3)",
    "choices": "Design choices of the searched heads (Table 4)",
    "correlated": "Correlated attributes of other domains (Table 5)",
    "domains": "Domain correlation from ARM embeddings (Fig. 5)",
    "quality": "Search quality: searched heads against random heads on the shared weights",
    "curves": "Search curves",
    "per_attribute": "Per-attribute AUC: searched network vs the strongest baseline",
}


MAX_CURVE_RUNS = 6


MAX_TABLE5_ATTRIBUTES = 5


TOP_CORRELATED = 3


def _comparison_section(inputs: ReportInputs) -> Section:
    section = Section(SECTION_TITLES["comparison"])
    if inputs.kind == "experiment":
        if not inputs.records:
            section.blocks.append(Text("No cells found under cells/: run `galm experiment` first."))
            return section
        section.blocks.extend(experiment_tables(inputs.records, inputs.spec))
        return section
    results = _read(RunDirectory(inputs.root).results_path)
    section.blocks.append(Text(f"{inputs.root.resolve().name} is a single run: there is no comparison grid "
                               "(run `galm experiment` for Tables 2 and 3)."))
    if isinstance(results, dict) and "mauc" in results:
        section.blocks.append(Table("This run", ["run", "domain", "mAUC (%)", "attributes scored"], [[
            inputs.root.name, str(results.get("domain", "")), f"{100 * results['mauc']:.1f}",
            str(len(results.get("per_attribute_auc", {})))]]))
    else:
        section.blocks.append(Text("results.json is missing: the run has not been retrained and scored."))
    return section


def _choices_section(inputs: ReportInputs) -> Section:
    section = Section(SECTION_TITLES["choices"])
    pooled: dict[str, list] = defaultdict(list)
    spaces: dict[str, SearchSpace] = {}
    for run in inputs.search_runs:
        data = _read(RunDirectory(run.path).architectures_path)
        if not isinstance(data, dict):
            continue
        try:
            space = SearchSpace(RunDirectory.open(run.path).config().space)
            archs = [architecture_from_record(v, f"{run.path}: {k}") for k, v in data.items()]
        except Exception:  # noqa: BLE001 - a broken run is left out, not fatal
            continue
        domain = _run_domain(run.path)
        spaces.setdefault(domain, space)
        pooled[domain].extend(archs)
    if not pooled:
        section.blocks.append(Text("No architectures.json of a GALM search was found: Table 4 needs a finished search."))
        return section
    domains = sorted(pooled)
    frequencies = {d: choice_frequencies(pooled[d], spaces[d]) for d in domains}
    first = frequencies[domains[0]]
    rows, bold = [], set()
    for decision, choices in first.items():
        start = len(rows)
        for choice in choices:
            rows.append([decision, choice, *[f"{100 * frequencies[d][decision].get(choice, 0.0):.1f}%" for d in domains]])
        for k, d in enumerate(domains):
            best = max(frequencies[d][decision].values())
            for r, choice in enumerate(choices):
                if frequencies[d][decision].get(choice, 0.0) == best:
                    bold.add((start + r, 2 + k))
    counts = ", ".join(f"{d}: {len(pooled[d])} heads" for d in domains)
    section.blocks.append(Table(
        "Table 4: frequency of each design choice per domain", ["decision", "choice", *domains], rows, bold,
        note=f"Derived architectures of every GALM search, pooled over seeds and scenarios ({counts}); "
             "the most frequent choice of each decision is in bold."))
    return section


def _correlated_section(inputs: ReportInputs) -> Section:
    section = Section(SECTION_TITLES["correlated"])
    rows = []
    for run, arm, domains in _arm_files(inputs, inputs.representative_runs()):
        if len(set(domains)) < 2:
            continue
        names = arm["attribute_names"]
        similarity = np.asarray(arm["cosine_similarity"], dtype=float)
        targets = list(arm.get("searched", range(len(names))))
        other = {i: [j for j in range(len(names)) if domains[j] != domains[i]] for i in targets}
        if len(targets) > MAX_TABLE5_ATTRIBUTES:
            variance = {i: float(np.var(similarity[i, other[i]])) if other[i] else 0.0 for i in targets}
            targets = sorted(targets, key=lambda i: -variance[i])[:MAX_TABLE5_ATTRIBUTES]
        for i in targets:
            best = sorted(other[i], key=lambda j: -similarity[i, j])[:TOP_CORRELATED]
            rows.append([run.label, f"{names[i]} ({domains[i]})",
                         ", ".join(f"{names[j]} [{domains[j]}] ({similarity[i, j]:.2f})" for j in best)])
    if not rows:
        section.blocks.append(Text("No arm.json holding attributes of several domains was found: Table 5 needs a "
                                   "transfer run (its arm.json holds source and target attributes)."))
        return section
    section.blocks.append(Table(
        "Table 5: most correlated attributes of other domains", ["run", "attribute (domain)",
                                                                 f"top {TOP_CORRELATED} of other domains (cosine)"],
        rows, note=f"ARM cosine similarity; up to {MAX_TABLE5_ATTRIBUTES} searched attributes per run (those whose "
                   "similarities to other domains vary most), lowest seed of each scenario."))
    return section


def _domains_section(inputs: ReportInputs) -> Section:
    from galm.report.plots import domain_heatmaps_png

    section = Section(SECTION_TITLES["domains"])
    sums: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _, arm, domains in _arm_files(inputs, inputs.search_runs):
        labels, matrix = domain_similarity(arm, domains)
        for i, a in enumerate(labels):
            for j, b in enumerate(labels):
                if np.isfinite(matrix[i, j]):
                    sums[(a, b)].append(matrix[i, j])
    labels = sorted({a for a, _ in sums})
    if len(labels) < 2:
        section.blocks.append(Text("ARM embeddings of only one domain were found: the domain × domain correlation "
                                   "needs a transfer run (its arm.json holds two domains)."))
        if labels:
            value = float(np.mean(sums[(labels[0], labels[0])]))
            section.blocks.append(Text(f"Mean cosine similarity within {labels[0]}: {value:.3f}."))
        return section
    matrix = np.full((len(labels), len(labels)), np.nan)
    for (a, b), values in sums.items():
        matrix[labels.index(a), labels.index(b)] = float(np.mean(values))
    rows = [[a, *["–" if not np.isfinite(v) else f"{v:.3f}" for v in matrix[i]]] for i, a in enumerate(labels)]
    section.blocks.append(Table("Mean cosine similarity between domains (rows: target, columns: source)",
                                ["domain", *labels], rows,
                                note="Averaged over every GALM run's arm.json holding both domains; self-pairs excluded."))
    section.blocks.append(Figure(domain_heatmaps_png(matrix, labels),
                                 "Fig. 5: domain correlation, (a) same domain ignored, (b) with the same domain."))
    return section


def _curves_section(inputs: ReportInputs) -> Section:
    from galm.report.plots import probabilities_png, search_curves_png

    section = Section(SECTION_TITLES["curves"])
    shown = 0
    for run in inputs.representative_runs()[:MAX_CURVE_RUNS]:
        metrics = RunDirectory(run.path).metrics_path
        if not metrics.is_file():
            continue
        records = [r for r in read_metrics(metrics) if r.get("phase") == "controller"]
        trace = (_read(RunDirectory(run.path).trace_path) or {}).get("reward_trace", [])
        if not records and not trace:
            continue
        shown += 1
        section.blocks.append(Figure(search_curves_png(records, trace, run.label),
                                     f"{run.label}: reward, baseline and entropy per episode; reward per update."))
        if any(k.startswith("p.") for r in records for k in r):
            section.blocks.append(Figure(probabilities_png(records, run.label),
                                         f"{run.label}: policy probability of each choice per episode."))
        if records:
            last = records[-1]
            section.blocks.append(Text(
                f"{run.label}: {len(records)} episodes logged, {len(trace)} controller updates; last episode reward "
                f"{last.get('reward', float('nan')):.3f}, baseline {last.get('baseline', float('nan')):.3f}, "
                f"entropy {last.get('entropy', float('nan')):.3f}."))
    if not shown:
        section.blocks.append(Text("No metrics.jsonl with controller records was found: search curves need a search run."))
    return section


def _per_attribute_section(inputs: ReportInputs) -> Section:
    from galm.report.plots import per_attribute_png

    section = Section(SECTION_TITLES["per_attribute"])
    if inputs.kind == "run":
        results = _read(RunDirectory(inputs.root).results_path)
        if not isinstance(results, dict) or "per_attribute_auc" not in results:
            section.blocks.append(Text("results.json is missing: no per-attribute AUC to show."))
            return section
        aucs = results["per_attribute_auc"]
        section.blocks.append(Text("A single run has no baseline; its per-attribute AUC is shown alone."))
        section.blocks.append(Table("Per-attribute AUC", ["attribute", "AUC"], [[k, f"{v:.3f}"] for k, v in aucs.items()]))
        section.blocks.append(Figure(per_attribute_png(list(aucs), {"searched": list(aucs.values())}, inputs.root.name),
                                     "Per-attribute AUC on the test classes."))
        return section
    done = [r for r in inputs.records if r["status"] == "done"]

    scenarios = [s["name"] for s in scenario_list(inputs.records, inputs.spec)]
    for scenario in scenarios:
        here = [r for r in done if r["scenario"] == scenario]
        galm = [r["results"].get("per_attribute_auc", {}) for r in here if r["method"] == "galm"]
        others = {m: mean_std([r["results"]["mauc"] for r in here if r["method"] == m])[0]
                  for m in {r["method"] for r in here if r["method"] != "galm"}}
        others = {m: v for m, v in others.items() if np.isfinite(v)}
        if not galm or not others:
            section.blocks.append(Text(f"{scenario}: needs finished galm cells and at least one other method."))
            continue
        strongest = max(others, key=others.get)
        theirs = [r["results"].get("per_attribute_auc", {}) for r in here if r["method"] == strongest]
        names = [n for n in galm[0] if all(n in g for g in galm) and all(n in t for t in theirs)]
        ours_mean = [float(np.mean([g[n] for g in galm])) for n in names]
        theirs_mean = [float(np.mean([t[n] for t in theirs])) for n in names]
        rows, bold = [], set()
        for r, (n, a, b) in enumerate(zip(names, ours_mean, theirs_mean)):
            rows.append([n, f"{a:.3f}", f"{b:.3f}", f"{a - b:+.3f}"])
            bold.add((r, 1 if a >= b else 2))
        wins = sum(a > b for a, b in zip(ours_mean, theirs_mean))
        section.blocks.append(Table(
            f"{scenario}: galm vs {strongest}", ["attribute", "galm", strongest, "difference"], rows, bold,
            note=f"Mean over {len(galm)} galm and {len(theirs)} {strongest} seeds; {strongest} is the non-GALM method "
                 f"with the highest mean mAUC here ({100 * others[strongest]:.1f}%). GALM is better on {wins} of "
                 f"{len(names)} attributes."))
        section.blocks.append(Figure(per_attribute_png(names, {"galm": ours_mean, strongest: theirs_mean}, scenario),
                                     f"{scenario}: per-attribute AUC, galm vs {strongest}."))
    if not scenarios:
        section.blocks.append(Text("No finished cells: nothing to compare per attribute."))
    return section


def _quality_section(inputs: ReportInputs) -> Section:
    section = Section(SECTION_TITLES["quality"])
    rows, network_rows, bold, gains = [], [], set(), []
    for run in inputs.search_runs:
        quality = _read(RunDirectory(run.path).search_quality_path)
        if not isinstance(quality, dict):
            continue
        choice = quality.get("derived_network")
        if isinstance(choice, dict):
            for candidate in choice.get("networks", []):
                if candidate.get("candidate") == choice.get("chosen"):
                    bold.add((len(network_rows), 2))
                network_rows.append([run.label, str(candidate.get("candidate")), f"{candidate.get('mauc', float('nan')):.4f}",
                                     str(choice.get("metric"))])
            if isinstance(choice.get("gain_over_anchor"), (int, float)):
                gains.append(f"{run.label}: the best searched network scored {100 * choice['gain_over_anchor']:+.2f} "
                             f"± {100 * choice.get('gain_standard_error', float('nan')):.2f} mAUC points against the "
                             f"best anchor (margin {choice.get('margin_se')} standard errors); kept {choice['chosen']}.")

        def number(key: str, scale: float = 1.0, digits: int = 3) -> str:
            value = quality.get(key)
            return "–" if value is None else f"{scale * value:.{digits}f}"

        rows.append([run.label, number("searched_val_mauc"), number("random_val_mauc"),
                     number("share_of_attributes_above_random_median", 100, 0) + "%",
                     f"{number('policy_entropy', digits=2)} / {number('max_policy_entropy', digits=2)}",
                     number("share_of_argmax_changed", 100, 0) + "%", str(quality.get("n_skipped", 0))])
    if not rows:
        section.blocks.append(Text("No search_quality.json was found: it is written by every search of this galm "
                                   "release (older runs lack it)."))
        return section
    section.blocks.append(Table(
        "Searched heads against random heads, on the weights the search trained",
        ["run", "searched val mAUC", "random val mAUC", "attributes above random median", "policy entropy / max",
         "argmax changed", "skipped"], rows,
        note="Validation AUC of the derived heads and of 8 draws of random heads, both on the search's shared "
             "weights. A searched mAUC near the random one, or an entropy near its maximum, means the search has "
             "not yet told heads apart; `benchmarks/search_quality.py` measures whether the shared-weight ranking "
             "predicts retrained test AUC."))
    if network_rows:
        section.blocks.append(Table(
            "Candidate networks of search.derive=networks", ["run", "candidate", "mAUC", "scored by"], network_rows,
            bold, note="Each whole candidate network (the policy's argmax, networks drawn from the policy, fixed-head "
                       "anchors) trained stand-alone on its own trunk; the bold one was kept. An anchor kept means "
                       "the search found no network clearly better than that fixed head."))
        if gains:
            section.blocks.append(Text(" ".join(gains)))
    return section


def build_sections(inputs: ReportInputs) -> list[Section]:
    """Every report section, in order; a failing section is replaced by a note (never fatal)."""
    sections = []
    for key, builder in (("comparison", _comparison_section), ("choices", _choices_section),
                         ("correlated", _correlated_section), ("domains", _domains_section),
                         ("quality", _quality_section), ("curves", _curves_section),
                         ("per_attribute", _per_attribute_section)):
        try:
            sections.append(builder(inputs))
        except Exception as error:  # noqa: BLE001 - one unreadable input must not lose the report
            sections.append(Section(SECTION_TITLES[key], [Text(f"This section could not be built: "
                                                               f"{type(error).__name__}: {error}")]))
    return sections
