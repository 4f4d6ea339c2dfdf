"""The result tables of an experiment directory: ``results.md``, ``results.csv`` and ``cells.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from galm.report.tables import cells_csv, experiment_tables, markdown_table, results_csv
from galm.runs.atomic import PathLike
from galm.runs.experiment_dir import (
    CELLS_CSV,
    RESULTS_CSV,
    RESULTS_MD,
    collect_cells,
    read_spec_record,
    write_output,
)


def summarise(out: PathLike, spec: Mapping[str, Any] | None = None) -> str:
    """Write the tables of the finished cells (`spec`: the recorded spec mapping, read from `out`
    when not given); returns the Markdown. A table file galm did not write is not overwritten."""
    out = Path(out)
    spec = spec if spec is not None else read_spec_record(out)
    records = collect_cells(out)
    lines = [f"# Experiment {spec['name'] if spec else out.name}", ""]
    for table in experiment_tables(records, spec):
        lines += [f"## {table.title}", "", markdown_table(table), ""]
        if table.note:
            lines += [table.note, ""]
    text = "\n".join(lines)
    write_output(out, RESULTS_MD, text.encode("utf-8"))
    write_output(out, RESULTS_CSV, results_csv(records, spec).encode("utf-8"))
    write_output(out, CELLS_CSV, cells_csv(records).encode("utf-8"))
    return text
