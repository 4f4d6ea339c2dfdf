"""`galm report`: one self-contained HTML report (and a Markdown twin) of a run or an experiment.

Every number comes from the run files: ``results.json`` (mAUC, per-attribute AUC),
``architectures.json`` (Table 4), ``arm.json`` with ``transfer.json`` (Table 5, Fig. 5),
``metrics.jsonl`` and ``search_trace.json`` (search curves), and an experiment's ``cells/`` (Tables 2
and 3, efficiency). A section whose inputs are missing says so.

This package reads files only: it never imports the search, the networks or torch training code,
so a report can be written where only the run directory is.
"""

from __future__ import annotations

from pathlib import Path

from galm.report.html import render_html, render_markdown
from galm.report.inputs import (
    ReportInputs,
    SearchRunInfo,
    attribute_domains,
    domain_similarity,
    gather_inputs,
)
from galm.report.sections import SECTION_TITLES, build_sections
from galm.runs.atomic import atomic_write_bytes
from galm.runs.directory import REPORT_FILE
from galm.runs.experiment_dir import write_output, writing

__all__ = [
    "SECTION_TITLES", "ReportInputs", "SearchRunInfo", "attribute_domains", "build_sections", "domain_similarity",
    "gather_inputs", "write_report",
]


def write_report(directory: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` for a run or experiment directory.

    The report names its directory by its folder name (or the experiment's name), never by an
    absolute path, so a report can be shared.
    """
    inputs = gather_inputs(directory)
    html_path = Path(out) if out is not None else inputs.root / REPORT_FILE
    md_path = html_path.with_suffix(".md")
    folder = inputs.root.resolve().name
    name = inputs.spec["name"] if inputs.spec is not None else folder
    title = f"GALM report: {name}"
    if inputs.kind == "experiment":
        done = sum(r["status"] == "done" for r in inputs.records)
        intro = f"Experiment directory {folder}: {done} of {len(inputs.records)} cells finished."
    else:
        intro = f"Run directory {folder}."
    sections = build_sections(inputs)
    html = render_html(title, intro, sections).encode("utf-8")
    markdown = render_markdown(title, intro, sections).encode("utf-8")
    if inputs.kind == "experiment" and html_path.parent.resolve() == inputs.root.resolve():
        # Into the experiment directory: with no other galm process writing there, and never over a
        # file galm did not write.
        with writing(inputs.root):
            write_output(inputs.root, html_path.name, html)
            write_output(inputs.root, md_path.name, markdown)
        return html_path, md_path
    html_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(html_path, html)
    atomic_write_bytes(md_path, markdown)
    return html_path, md_path
