import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from galm.config.typed import ConfigError
from galm.data.sources import config_domain
from galm.runs.directory import RunDirectory
from galm.search.jobs import derive_run
from galm.experiments import grid as experiment
from galm.experiments.grid import run_experiment
from galm.experiments.spec import (
    cell_path,
    expand_cells,
    read_spec,
    search_evaluations,
    spec_from_mapping,
)
from galm.runs.experiment_dir import collect_cells

torch.set_num_threads(1)

TINY = Path(__file__).resolve().parents[1] / "configs" / "experiments" / "tiny.yaml"
SYNTHETIC = TINY.with_name("synthetic.yaml")


def _tiny_mapping(**changes):
    data = yaml.safe_load(TINY.read_text())
    data.update(changes)
    return data


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    spec = read_spec(TINY)
    outcome = run_experiment(spec, out)
    return spec, out, outcome


def test_tiny_grid_runs_every_cell(grid):
    spec, out, outcome = grid
    cells = expand_cells(spec)
    assert len(cells) == len(spec.methods) * len(spec.scenarios) * len(spec.seeds)
    assert outcome.count("done") == len(cells), outcome.status
    for cell in cells:
        path = cell_path(out, cell)
        assert (path / "done").is_file() and (path / "cell.json").is_file()
        results = json.loads((path / "results.json").read_text())
        assert 0.0 <= results["mauc"] <= 1.0
        assert results["seconds"] > 0 and results["evaluations"] >= 0
        assert json.loads((path / "cell.json").read_text())["method"] == cell.method
    transfer_galm = out / "cells" / "s1d2" / "galm" / "seed0"
    assert (transfer_galm / "transfer.json").is_file() and (transfer_galm / "source" / "architectures.json").is_file()


def test_random_search_cell_is_one_run_without_a_resume(grid):
    _, out, _ = grid
    cell = out / "cells" / "sem1" / "random_search" / "seed0"
    assert json.loads((cell / "run.json").read_text())["resumes"] == []
    record = json.loads((cell / "architectures.json").read_text())
    assert all("val_reward" in head for head in record.values())


def test_results_tables_have_mean_and_std(grid):
    spec, out, _ = grid
    text = (out / "results.md").read_text()
    assert "Table 2" in text and "Table 3" in text and "Efficiency" in text
    assert "±" in text and "**" in text
    for method in spec.methods:
        assert f"| {method} |" in text
    rows = list(csv.reader((out / "results.csv").open()))
    assert rows[0][:4] == ["method", "sem1:mauc_mean", "sem1:mauc_std", "sem1:n"]
    assert [r[0] for r in rows[1:]] == list(spec.methods)
    assert all(float(r[1]) > 0 and r[3] == "1" for r in rows[1:])
    assert (out / "cells.csv").is_file()


def test_evaluation_counts_follow_the_search_budget(grid):
    spec, out, _ = grid
    cells = {(c.method, c.scenario.name): c for c in expand_cells(spec)}
    config = experiment.cell_config(cells[("galm", "sem1")])
    assert search_evaluations(config, 4) == 1 * 2 * 4 + 2 * 4  # controller updates + best-of-1 derive
    galm = json.loads((cell_path(out, cells[("galm", "sem1")]) / "results.json").read_text())
    random = json.loads((cell_path(out, cells[("random_search", "sem1")]) / "results.json").read_text())
    assert galm["evaluations"] == search_evaluations(config, 4)
    # As many candidate sets as GALM's controller evaluations per attribute, then best-of-2 rescoring.
    assert random["candidates_per_attribute"] == 2 and random["evaluations"] == galm["evaluations"]
    hand = json.loads((cell_path(out, cells[("hand_designed", "sem1")]) / "results.json").read_text())
    assert hand["evaluations"] == 0


def _small_spec(**changes):
    settings = {"scenarios": [{"name": "sem1", "kind": "semantic", "domain": "syn1"}],
                "methods": ["hand_designed", "dap"], "seeds": [0, 1], **changes}
    return spec_from_mapping(_tiny_mapping(**settings))


def test_interrupted_grid_resumes_without_redoing_finished_cells(tmp_path, monkeypatch):
    spec = _small_spec()
    real = experiment.CELL_RUNNERS["hand_designed"]
    calls = []

    def interrupted(ctx):
        calls.append(ctx.cell.key)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the grid is stopped while the second network cell runs
        return real(ctx)

    monkeypatch.setitem(experiment.CELL_RUNNERS, "hand_designed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, tmp_path)
    first = cell_path(tmp_path, expand_cells(spec)[0])
    assert (first / "done").is_file()
    stamp = (first / "done").stat().st_mtime_ns

    calls.clear()
    monkeypatch.setitem(experiment.CELL_RUNNERS, "hand_designed", lambda ctx: calls.append(ctx.cell.key) or real(ctx))
    outcome = run_experiment(spec, tmp_path)
    assert calls == ["sem1/hand_designed/seed1"]
    assert outcome.status["sem1/hand_designed/seed0"] == "skipped"
    assert outcome.count("failed") == 0 and outcome.count("done") == 2 and outcome.count("skipped") == 2
    assert (first / "done").stat().st_mtime_ns == stamp
    # A third run does nothing.
    assert run_experiment(spec, tmp_path).count("skipped") == 4


def test_failed_cell_is_recorded_and_the_rest_finish(tmp_path, monkeypatch):
    spec = _small_spec()
    real = experiment.CELL_RUNNERS["hand_designed"]

    def flaky(ctx):
        if ctx.cell.seed == 0:
            raise ValueError("simulated failure")
        return real(ctx)

    monkeypatch.setitem(experiment.CELL_RUNNERS, "hand_designed", flaky)
    outcome = run_experiment(spec, tmp_path)
    assert outcome.status["sem1/hand_designed/seed0"] == "failed"
    assert outcome.status["sem1/hand_designed/seed1"] == "done"
    assert outcome.status["sem1/dap/seed1"] == "done"
    assert outcome.status["sem1/dap/seed0"] == "failed"  # its feature network is missing
    error = json.loads((tmp_path / "cells" / "sem1" / "hand_designed" / "seed0" / "error.json").read_text())
    assert error["type"] == "ValueError" and "simulated failure" in error["message"] and "Traceback" in error["traceback"]
    text = (tmp_path / "results.md").read_text()
    assert "(0/2 seeds)" not in text and "(1/2 seeds)" in text and "simulated failure" in text
    statuses = {(r["method"], r["seed"]): r["status"] for r in collect_cells(tmp_path)}
    assert statuses[("hand_designed", 0)] == "failed"

    monkeypatch.setitem(experiment.CELL_RUNNERS, "hand_designed", real)
    retried = run_experiment(spec, tmp_path)  # failed cells are retried, finished ones skipped
    assert retried.status["sem1/hand_designed/seed0"] == "done" and retried.status["sem1/dap/seed0"] == "done"
    assert retried.status["sem1/hand_designed/seed1"] == "skipped"
    assert not (tmp_path / "cells" / "sem1" / "hand_designed" / "seed0" / "error.json").exists()


def test_changed_spec_reruns_the_cell_and_its_dependants(tmp_path):
    spec = _small_spec(seeds=[0])
    run_experiment(spec, tmp_path)
    changed = _small_spec(seeds=[0], hand_designed="c4k3s0-c5k3s0-f64-f128-o1")
    with pytest.raises(ValueError, match="another spec.*hand_designed.*--force"):
        run_experiment(changed, tmp_path)  # another spec is refused unless forced
    outcome = run_experiment(changed, tmp_path, force=True)
    assert outcome.status == {"sem1/hand_designed/seed0": "done", "sem1/dap/seed0": "done"}


def test_single_task_and_fine_tuning_cells(tmp_path):
    spec = spec_from_mapping(_tiny_mapping(
        scenarios=[{"name": "t", "kind": "transfer", "source": "syn1", "target": "syn2"}],
        methods=["single_task", "ft", "iap"], features_from="single_task"))
    outcome = run_experiment(spec, tmp_path)
    assert outcome.count("done") == 3, outcome.status
    single = tmp_path / "cells" / "t" / "single_task" / "seed0"
    assert json.loads((single / "results.json").read_text())["evaluations"] > 0
    assert (single / "architectures.json").is_file() and (single / "arm.json").is_file()
    # The attribute-agnostic controller is a recorded setting, so `galm derive` reproduces the cell.
    run = RunDirectory.open(single)
    assert run.config().controller.attribute_conditioned is False
    assert run.config().controller.per_attribute_baseline is False
    before = json.loads(run.architectures_path.read_text())
    derive_run(run, config_domain(run.config()), torch.device("cpu"), None, None)
    assert json.loads(run.architectures_path.read_text()) == before
    ft = json.loads((tmp_path / "cells" / "t" / "ft" / "seed0" / "results.json").read_text())
    assert ft["source_domain"] == "syn1" and 0 <= ft["source_mauc"] <= 1


def test_ft_is_only_run_in_transfer_scenarios():
    spec = spec_from_mapping(_tiny_mapping(methods=["hand_designed", "ft"]))
    assert [(c.scenario.name, c.method) for c in expand_cells(spec)] == [
        ("sem1", "hand_designed"), ("s1d2", "hand_designed"), ("s1d2", "ft")]


def test_feature_baselines_hap_umf_mdg_afs_run_in_a_grid(tmp_path):
    spec = spec_from_mapping(_tiny_mapping(methods=["hand_designed", "hap", "umf", "mdg", "afs"]))
    assert [(c.scenario.name, c.method) for c in expand_cells(spec) if c.method == "afs"] == [("s1d2", "afs")]
    outcome = run_experiment(spec, tmp_path)
    assert outcome.count("done") == 9, outcome.status  # afs only in the transfer scenario
    for scenario in ("sem1", "s1d2"):
        for method in ("hap", "umf", "mdg"):
            results = json.loads((tmp_path / "cells" / scenario / method / "seed0" / "results.json").read_text())
            assert 0.0 <= results["mauc"] <= 1.0 and results["evaluations"] == 0
            assert results["features_from"] == f"{scenario}/hand_designed/seed0"
            assert results["features"] == {"extractor": "trunk", "layer": "conv3", "pooling": "avg", "dimensions": 64}
    afs = json.loads((tmp_path / "cells" / "s1d2" / "afs" / "seed0" / "results.json").read_text())
    assert afs["source_domain"] == "syn1" and 0.0 <= afs["mauc"] <= 1.0
    target = config_domain(experiment.cell_config(expand_cells(spec)[-1]))
    assert set(afs["attention"]) == set(target.attribute_names)
    assert all(0.0 <= weight <= 1.0 for tops in afs["attention"].values() for _, weight in tops)
    text = (tmp_path / "results.md").read_text()
    semantic, transfer = text.split("Table 3")[0], text.split("Table 3")[1].split("Efficiency")[0]
    assert "| afs | n/a |" in semantic and "| afs | n/a |" not in transfer
    for method in ("hap", "umf", "mdg", "afs"):
        assert f"| {method} |" in transfer
    assert "Feature-based baselines (hap, umf, mdg) read Conv-3 features (avg-pooled, 64-d)" in semantic
    assert "afs also uses that trunk's features of the source domain" in transfer


@pytest.mark.parametrize("changes, message", [
    ({"methods": ["galm", "nope"]}, "unknown"),
    ({"methods": ["dap"]}, "features_from"),
    ({"scenarios": [{"name": "x", "kind": "transfer", "source": "syn1"}]}, "target"),
    ({"scenarios": [{"name": "x", "kind": "semantic", "domain": "syn9"}]}, "syn9"),
    ({"base": ["search.episodes=-1"]}, "episodes"),
])
def test_bad_specs_are_refused(changes, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        spec = spec_from_mapping(_tiny_mapping(**changes))
        for cell in expand_cells(spec):
            experiment.cell_config(cell)  # data errors surface when the domain opens
            from galm.data.sources import config_domain

            config_domain(experiment.cell_config(cell))


def test_checked_in_synthetic_spec_is_valid():
    spec = read_spec(SYNTHETIC)
    assert {"galm", "random_search", "hand_designed", "single_task", "dap", "iap", "ale", "ft",
            "hap", "umf", "mdg", "afs"} <= set(spec.methods)
    assert {s.kind for s in spec.scenarios} == {"semantic", "transfer"}
    assert list(spec.seeds) == [0, 1, 2]
