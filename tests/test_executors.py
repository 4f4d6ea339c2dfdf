"""Executors of a grid: `--jobs N` worker processes and Ray tasks give the serial grid's results,
start a baseline only after its feature network, and resume what another executor began."""

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import yaml

from galm.cli.program import main
from galm.experiments.cell import run_cell
from galm.experiments.executors import ProcessPoolCells, SerialExecutor, executor_for
from galm.experiments.scheduling import run_in_dependency_order
from galm.experiments.grid import run_experiment
from galm.experiments.spec import cell_path, expand_cells, spec_from_mapping
from galm.runs.experiment_dir import STORAGE_PROBE_FILE, write_storage_probe

TINY = Path(__file__).resolve().parents[1] / "configs" / "experiments" / "tiny.yaml"


def _small_mapping(**changes):
    """The tiny grid cut to one scenario, a network method and a baseline reading its trunk, two seeds."""
    data = yaml.safe_load(TINY.read_text())
    data.update({"scenarios": [{"name": "sem1", "kind": "semantic", "domain": "syn1"}],
                 "methods": ["hand_designed", "dap"], "seeds": [0, 1], **changes})
    return data


def _scores(out: Path, spec) -> dict[str, tuple[float, dict[str, float], int]]:
    scores = {}
    for cell in expand_cells(spec):
        results = json.loads((cell_path(out, cell) / "results.json").read_text())
        scores[cell.key] = (results["mauc"], results["per_attribute_auc"], results["threads"])
    return scores


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The serial grid: the reference every executor must reproduce."""
    spec = spec_from_mapping(_small_mapping())
    out = tmp_path_factory.mktemp("serial")
    previous = torch.get_num_threads()
    outcome = run_experiment(spec, out)
    torch.set_num_threads(previous)
    assert outcome.count("done") == 4, outcome.status
    return spec, out


def test_jobs_give_the_serial_results(serial, tmp_path, capsys):
    spec, reference = serial
    spec_file = tmp_path / "small.yaml"
    spec_file.write_text(yaml.safe_dump(_small_mapping()))
    out = tmp_path / "grid"
    assert main(["experiment", str(spec_file), "--out", str(out), "--jobs", "2", "--no-report"]) == 0
    printed = capsys.readouterr().out
    assert "4 cells run, 0 already finished, 0 failed" in printed
    assert (out / "results.csv").read_text() == (reference / "results.csv").read_text()
    assert _scores(out, spec) == _scores(reference, spec)
    assert all(threads == 1 for _, _, threads in _scores(out, spec).values())  # the spec's threads=1

    # A grid begun by the pool resumes serially: nothing is redone.
    assert run_experiment(spec, out).count("skipped") == 4


def test_threads_zero_takes_the_granted_cores(tmp_path):
    spec = spec_from_mapping(_small_mapping(methods=["hand_designed"], seeds=[0], base=[
        *[entry for entry in _small_mapping()["base"] if not entry.startswith("threads=")], "threads=0"]))
    (cell,) = expand_cells(spec)
    previous = torch.get_num_threads()
    try:
        assert run_cell(cell, tmp_path, granted_cores=2.0) == "done"
    finally:
        torch.set_num_threads(previous)
    assert json.loads((cell_path(tmp_path, cell) / "results.json").read_text())["threads"] == 2


def test_dependencies_start_after_their_network_and_lost_cells_are_reported(tmp_path):
    spec = spec_from_mapping(_small_mapping())
    cells = expand_cells(spec)
    started, ended = [], []
    lock = threading.Lock()

    def fake(cell):
        with lock:
            assert all(dependency in ended for dependency in cell.dependencies), cell.key
            started.append(cell.key)
        time.sleep(0.05 if cell.seed == 0 else 0.01)
        with lock:
            ended.append(cell.key)
        if cell.key == "sem1/dap/seed1":
            raise ConnectionError("worker died\nsecond line")
        return "done"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcome = run_in_dependency_order(cells, tmp_path, lambda cell: pool.submit(fake, cell), None)
    assert sorted(started) == sorted(cell.key for cell in cells)
    assert started[:2] == ["sem1/hand_designed/seed0", "sem1/hand_designed/seed1"]  # both networks at once
    assert outcome.status["sem1/dap/seed1"] == "lost" and outcome.count("done") == 3
    assert outcome.errors == {"sem1/dap/seed1": "ConnectionError: worker died"}


def test_executor_options_are_checked(tmp_path, capsys):
    assert isinstance(executor_for("local"), SerialExecutor)
    assert executor_for("local", jobs=3) == ProcessPoolCells(3)
    with pytest.raises(ValueError, match="--cpus-per-cell only apply to --executor ray"):
        executor_for("local", cpus_per_cell=2)
    with pytest.raises(ValueError, match="--jobs is for --executor local"):
        executor_for("ray", jobs=2)
    spec_file = tmp_path / "small.yaml"
    spec_file.write_text(yaml.safe_dump(_small_mapping()))
    assert main(["experiment", str(spec_file), "--out", str(tmp_path / "g"), "--gpus-per-cell", "1"]) == 2
    assert "--gpus-per-cell only apply to --executor ray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["experiment", str(spec_file), "--jobs", "0"])
    assert not (tmp_path / "g").exists()


def test_a_missing_ray_is_a_clear_error_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    spec_file = tmp_path / "small.yaml"
    spec_file.write_text(yaml.safe_dump(_small_mapping()))
    assert main(["experiment", str(spec_file), "--out", str(tmp_path / "g"), "--executor", "ray"]) == 2
    error = capsys.readouterr().err
    assert "--executor ray needs Ray" in error and "galm[ray]" in error
    assert not (tmp_path / "g").exists()


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance of 2 CPUs for this module's Ray tests."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_serial_results_and_resumes(serial, ray_instance, tmp_path, capsys):
    spec, reference = serial
    out = tmp_path / "grid"
    outcome = run_experiment(spec, out, executor=executor_for("ray", cpus_per_cell=1))
    assert outcome.count("done") == 4, (outcome.status, outcome.errors)
    assert (out / "results.csv").read_text() == (reference / "results.csv").read_text()
    assert _scores(out, spec) == _scores(reference, spec)
    assert not (out / STORAGE_PROBE_FILE).exists()

    spec_file = tmp_path / "small.yaml"
    spec_file.write_text(yaml.safe_dump(_small_mapping()))
    assert main(["experiment", str(spec_file), "--out", str(out), "--executor", "ray", "--no-report"]) == 0
    assert "0 cells run, 4 already finished, 0 failed" in capsys.readouterr().out


def test_ray_refuses_storage_its_workers_do_not_see(ray_instance, tmp_path):
    from galm.experiments.ray_cells import StorageNotShared, check_shared_storage, run_cell_task

    write_storage_probe(tmp_path)
    with pytest.raises(StorageNotShared, match="not on storage every Ray worker sees"):
        check_shared_storage(tmp_path, "a token the nodes do not read")
    assert check_shared_storage(tmp_path, (tmp_path / STORAGE_PROBE_FILE).read_text()) == 1

    cell = expand_cells(spec_from_mapping(_small_mapping()))[0]
    task = ray_instance.remote(run_cell_task)
    outcome = run_in_dependency_order(
        [cell], tmp_path, lambda c: task.remote(c, str(tmp_path), "another token", None, 0.0).future(), None)
    assert outcome.status == {cell.key: "lost"}
    assert outcome.errors[cell.key].startswith("StorageNotShared: ")
    assert not cell_path(tmp_path, cell).exists()  # nothing was run


def test_a_retried_ray_task_takes_over_the_lock_its_dead_attempt_left(ray_instance, tmp_path):
    from galm.experiments.cell import CELL_LOCK_ROLE
    from galm.experiments.ray_cells import run_cell_task
    from galm.runs.lock import LOCK_FILE

    cell = expand_cells(spec_from_mapping(_small_mapping(seeds=[0])))[0]
    path = cell_path(tmp_path, cell)
    path.mkdir(parents=True)
    (path / "half-written.txt").write_text("what the dead attempt left")
    (path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "a-node-that-died", "token": "t",
                                              "role": CELL_LOCK_ROLE}))
    token = write_storage_probe(tmp_path)
    status = ray_instance.get(ray_instance.remote(run_cell_task).remote(cell, str(tmp_path), token, None, 0.0))
    assert status == "done"
    assert not (path / "half-written.txt").exists() and not (path / LOCK_FILE).exists()
    assert json.loads((path / "results.json").read_text())["threads"] == 1
