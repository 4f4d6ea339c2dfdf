import argparse
import re
from pathlib import Path

import pytest
import torch

from galm.cli.report import COMMANDS, register
from galm.experiments.grid import run_experiment
from galm.experiments.spec import read_spec
from galm.report import SECTION_TITLES, domain_similarity, write_report

torch.set_num_threads(1)

TINY = Path(__file__).resolve().parents[1] / "configs" / "experiments" / "tiny.yaml"


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiment")
    run_experiment(read_spec(TINY), out)
    return out


@pytest.fixture(scope="module")
def report(experiment_dir):
    html_path, md_path = write_report(experiment_dir)
    return html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")


def test_report_has_every_section(report):
    html, md = report
    for title in SECTION_TITLES.values():
        assert title in html and f"## {title}" in md
    for heading in ("Table 2", "Table 3", "Table 4", "Table 5", "Fig. 5", "Efficiency"):
        assert heading in html and heading in md
    assert "could not be built" not in html
    assert "Searched heads against random heads, on the weights the search trained" in html


def test_report_marks_best_values_and_reads_numbers_from_runs(report, experiment_dir):
    html, md = report
    assert "<strong>" in html and "**" in md
    import json

    mauc = json.loads((experiment_dir / "cells" / "sem1" / "galm" / "seed0" / "results.json").read_text())["mauc"]
    assert f"{100 * mauc:.1f} ± 0.0" in md


def test_html_is_self_contained(report):
    html, _ = report
    assert "http://" not in html and "https://" not in html
    assert 'src="/' not in html and "<link" not in html and "<script" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "url(" not in html


def test_single_run_report_and_missing_inputs(experiment_dir, tmp_path):
    galm_run = experiment_dir / "cells" / "s1d2" / "galm" / "seed0"
    html_path, md_path = write_report(galm_run, tmp_path / "run.html")
    md = md_path.read_text()
    assert md_path == tmp_path / "run.md"
    assert "single run" in md and "Table 4" in md and "Table 5" in md
    hand = experiment_dir / "cells" / "sem1" / "hand_designed" / "seed0"
    md = write_report(hand, tmp_path / "hand.html")[1].read_text()
    assert "No metrics.jsonl with controller records" in md
    assert "No arm.json holding attributes of several domains" in md
    empty = tmp_path / "empty"
    (empty / "cells").mkdir(parents=True)
    md = write_report(empty)[1].read_text()
    assert "No cells found" in md and "Table 4 needs a finished search" in md


def test_domain_similarity_excludes_self_pairs():
    arm = {"cosine_similarity": [[1.0, 0.5, 0.2], [0.5, 1.0, 0.4], [0.2, 0.4, 1.0]]}
    labels, matrix = domain_similarity(arm, ["a", "a", "b"])
    assert labels == ["a", "b"]
    assert matrix[0, 0] == pytest.approx(0.5)
    assert matrix[0, 1] == pytest.approx(0.3) and matrix[1, 0] == pytest.approx(0.3)
    assert matrix[1, 1] != matrix[1, 1]  # one attribute: no pair, NaN


def test_commands_parse_and_dispatch(experiment_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="command")
    register(subparsers)
    args = parser.parse_args(["report", str(experiment_dir), "--out", str(tmp_path / "r.html")])
    assert COMMANDS[args.command](args) == 0 and (tmp_path / "r.html").is_file() and (tmp_path / "r.md").is_file()
    args = parser.parse_args(["experiment", str(TINY), "--out", str(experiment_dir), "--no-report"])
    assert args.spec == TINY and args.report is False
    assert COMMANDS[args.command](args) == 0  # every cell already finished: all skipped
    assert "already finished" in capsys.readouterr().out


def test_report_names_no_absolute_path(report, experiment_dir):
    html, md = report
    assert str(experiment_dir) not in html and str(experiment_dir) not in md
    assert str(experiment_dir.parent) not in md


def test_tables_label_a_prepared_domain_by_its_folder_name():
    from galm.report.tables import domain_label

    assert domain_label("syn1") == "syn1" and domain_label("syn1+syn2") == "syn1+syn2"
    assert domain_label("/home/me/cache/cub") == "cub"
    assert domain_label("/data/awa2+/data/apy") == "awa2+apy"


def test_report_lists_the_candidate_networks_of_a_networks_derive(experiment_dir, tmp_path):
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(experiment_dir / "cells" / "s1d2" / "galm" / "seed0", run)
    quality_path = run / "search_quality.json"
    quality = json.loads(quality_path.read_text())
    quality["derived_network"] = {"metric": "cross_validated_mauc", "chosen": "anchor largest",
                                  "networks": [{"candidate": "argmax", "mauc": 0.7123},
                                               {"candidate": "sample 1", "mauc": 0.7501},
                                               {"candidate": "anchor largest", "mauc": 0.7456}],
                                  "gain_over_anchor": 0.0045, "gain_standard_error": 0.0061, "margin_se": 1.0}
    quality_path.write_text(json.dumps(quality))
    md = write_report(run, tmp_path / "run.html")[1].read_text()
    assert "Candidate networks of search.derive=networks" in md
    assert "0.7123" in md and "**0.7456**" in md and "**0.7501**" not in md
    # The gain that did not clear the margin is stated beside the table.
    assert "+0.45 ± 0.61 mAUC points against the best anchor (margin 1.0 standard errors); kept anchor largest" in md
