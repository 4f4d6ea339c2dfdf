"""A catalogue of malformed inputs, each run through the command line (`galm.cli.main`).

Every case must end with exit code 2 and one line on stderr that names the file, line or key at
fault and what was expected, and must leave nothing behind: no new run directory, no temporary
file, no record appended to an existing run. A regression in any of them shows here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from galm.cli import main
from tests.support import TINY_SEARCH

TINY = (*TINY_SEARCH, "train.epochs=1", "train.batch_size=16")


def sets(*overrides: str) -> list[str]:
    """``--set`` arguments for every override."""
    return [item for override in overrides for item in ("--set", override)]


def refused(argv: list[str], capsys, *needles: str) -> str:
    """Run the command line; assert exit code 2 and one error line containing every needle."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "error:" in lines[0], err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def leftovers(root: Path) -> list[str]:
    """Temporary files and directories galm might leave under ``root``."""
    return sorted(str(p) for p in root.rglob("*") if p.name.endswith(".tmp") or ".tmp-" in p.name
                  or ".old-" in p.name or p.name == ".galm.lock")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished tiny search, retrained (model.pt): copy it before changing it."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("bad-inputs") / "run"
    assert main(["search", "--out", str(run), "--retrain", *sets(*TINY)]) == 0
    return run


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize("command", ["train", "search"])
@pytest.mark.parametrize("override, needle", [
    ("search.batch_size=0", "search.batch_size"),
    ("device=tpu", "device"),
    ("space.fc_widths=[0]", "space.fc_widths"),
    ("train.lr=-1", "train.lr"),
    ("train.epochs=-1", "train.epochs"),
    ("train.epochs=0", "train.epochs"),
    ("train.eval_split=nope", "train.eval_split"),
    ("controller.lr=0", "controller.lr"),
    ("search.derive_epochs=0", "search.derive_epochs"),
    ("search.retrain_splits=[]", "search.retrain_splits"),
    ("seed=-1", "seed"),
    ("train.lrr=1", "train.lr"),
    ("data.source=/nonexistent", "/nonexistent"),
])
def test_bad_settings_are_refused_before_the_run_directory_exists(tmp_path, capsys, command, override, needle):
    out = tmp_path / "run"
    refused([command, "--out", str(out), *sets(*TINY, override)], capsys, needle)
    assert not out.exists()
    refused([command, "--out", str(out), *sets(*TINY, override)], capsys, needle)  # the same --out again


def test_an_unavailable_device_is_refused_before_the_run_directory_exists(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    out = tmp_path / "run"
    refused(["train", "--out", str(out), *sets(*TINY, "device=cuda")], capsys, "device", "CUDA")
    assert not out.exists()


def test_a_bad_architecture_string_is_refused(tmp_path, capsys):
    refused(["train", "--out", str(tmp_path / "run"), "--arch", "c4k9", *sets(*TINY)], capsys, "architecture string")
    assert not (tmp_path / "run").exists()


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    out = tmp_path / "file"
    out.write_text("mine")
    refused(["train", "--out", str(out), *sets(*TINY)], capsys, str(out), "not a directory")
    assert out.read_text() == "mine"


def test_a_failure_before_the_first_result_removes_the_new_run_directory(tmp_path, capsys, monkeypatch):
    """A run that fails after its directory was made (here: while training) leaves nothing, so the
    same --out works next time; a directory the user made stays, empty."""
    import galm.cli.train

    def broken(*args, **kwargs):
        raise ValueError("simulated failure while training")

    monkeypatch.setattr(galm.cli.train, "train_and_evaluate", broken)
    out = tmp_path / "run"
    refused(["train", "--out", str(out), *sets(*TINY)], capsys, "simulated failure")
    assert not out.exists()
    out.mkdir()
    refused(["train", "--out", str(out), *sets(*TINY)], capsys, "simulated failure")
    assert out.is_dir() and not any(out.iterdir())


def test_derive_refuses_a_negative_sample_count(run_copy, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["derive", str(run_copy), "--method", "best_of_k", "--samples", "-3"])
    assert exit_info.value.code == 2
    assert "--samples" in capsys.readouterr().err


def test_evaluate_refuses_an_unknown_split(run_copy, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(run_copy), "--split", "nope"])
    assert exit_info.value.code == 2
    assert "--split" in capsys.readouterr().err
    assert not (run_copy / "results-nope.json").exists()


def test_a_transfer_from_an_unfinished_search_is_refused(run_copy, tmp_path, capsys):
    (run_copy / "arm.json").unlink()  # what a search that is still running (or was stopped) lacks
    out = tmp_path / "transfer"
    refused(["transfer", "--source", str(run_copy), "--target", "syn1", "--out", str(out)], capsys,
            "arm.json", "has not finished")
    assert not out.exists()


def test_resume_refuses_other_settings_and_records_nothing(run_copy, capsys):
    before = (run_copy / "run.json").read_text()
    refused(["search", "--resume", str(run_copy), "--set", "seed=3"], capsys, "--resume")
    refused(["search", "--resume", str(run_copy), "--out", str(run_copy.parent / "x")], capsys, "--out")
    assert (run_copy / "run.json").read_text() == before
    assert not (run_copy.parent / "x").exists()


def test_nothing_is_left_behind(finished_run):
    assert leftovers(finished_run) == []
    assert json.loads((finished_run / "run.json").read_text())["resumes"] == []


def test_an_unexpected_error_asks_for_a_report_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    import galm.cli.demo

    def bug(args):
        raise KeyError("a galm bug")

    monkeypatch.setitem(galm.cli.demo.COMMANDS, "space", bug)
    assert main(["space"]) == 1
    err = capsys.readouterr().err
    assert "please report this" in err and "--debug" in err and "Traceback" not in err
    assert main(["--debug", "space"]) == 1
    assert "Traceback" in capsys.readouterr().err


# --------------------------------------------------------------------------- YAML files


@pytest.mark.parametrize("content, needles", [
    (b"train:\n  epochs: 3\ntrain:\n  lr: 0.1\n", ("line 3", "duplicate key 'train'", "line 1")),
    (b"train:\n  epochs: 3\n  epochs: 4\n", ("line 3", "duplicate key 'epochs'")),
    (b"\x00\x01\x02binary\xff", ("binary",)),
    (b"train:\n  epochs: 3\n# caf\xe9\n", ("line 3", "UTF-8")),
    (b"train: [1, 2\n", ("invalid YAML", "line 2")),
    (b"- 1\n- 2\n", ("top level must be a mapping",)),
    (b"controller:\n  hidden: three\n", ("controller.hidden", "expected int")),
])
def test_a_malformed_config_file_is_named(tmp_path, capsys, content, needles):
    path = tmp_path / "settings.yaml"
    path.write_bytes(content)
    out = tmp_path / "run"
    line = refused(["train", "--config", str(path), "--out", str(out), *sets(*TINY)], capsys, *needles)
    assert not out.exists()
    if "controller.hidden" not in needles:
        assert str(path) in line


def test_a_malformed_config_yaml_in_a_run_directory_is_named(run_copy, capsys):
    config = run_copy / "config.yaml"
    before = (run_copy / "run.json").read_text()
    for text in ("seed: [unclosed\n", "seed: 0\nseed: 1\n", "search:\n  batch_size: 0\n"):
        config.write_text(text)
        for argv in (["search", "--resume", str(run_copy)], ["derive", str(run_copy)], ["retrain", str(run_copy)],
                     ["evaluate", str(run_copy)]):
            refused(argv, capsys, str(config))
    assert (run_copy / "run.json").read_text() == before


SPEC = """name: bad
scenarios:
  - {name: sem1, kind: semantic, domain: syn1}
methods: [hand_designed]
base: [space.resolution=32, data.synthetic.resolution=32]
"""


@pytest.mark.parametrize("extra, needles", [
    ("seeds: [a]\n", ("seeds", "integers")),
    ("seeds: 3\n", ("seeds",)),
    ("methods: galm\n", ("duplicate key 'methods'",)),
    ("random_candidates: many\n", ("random_candidates",)),
    ("hand_designed: c4k9\n", ("hand_designed",)),
    ("scenarios: {a: 1}\n", ("duplicate key 'scenarios'",)),
    ("colour: blue\n", ("unknown keys", "colour")),
    ("oops: [1, 2\n", ("invalid YAML",)),
])
def test_a_malformed_experiment_spec_is_named(tmp_path, capsys, extra, needles):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC + extra)
    out = tmp_path / "grid"
    refused(["experiment", str(spec), "--out", str(out)], capsys, str(spec), *needles)
    assert not out.exists()


def test_a_spec_whose_cell_config_fails_names_the_spec_and_the_key(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("data.synthetic.resolution=32]", "data.synthetic.resolution=32, train.epochs=0]"))
    refused(["experiment", str(spec), "--out", str(tmp_path / "grid")], capsys, str(spec), "train.epochs")
    assert not (tmp_path / "grid").exists()


# --------------------------------------------------------------------------- tables


@pytest.fixture
def table_folder(tmp_path) -> Path:
    """A folder of eight tiny images; tables naming them are written by the tests."""
    from PIL import Image

    folder = tmp_path / "data"
    (folder / "img").mkdir(parents=True)
    for i in range(8):
        Image.new("RGB", (8, 8), (30 * i, 90, 40)).save(folder / "img" / f"{i}.png")
    return folder


def _rows(classes: int = 4, delimiter: str = ",") -> str:
    return "".join(delimiter.join([f"img/{i}.png", f"c{i % classes}", str(i % 2), str(i // 4)]) + "\n"
                   for i in range(8))


def prepare_refused(table: Path, capsys, *needles: str, options: tuple[str, ...] = ()) -> None:
    out = table.parent.parent / "cache"
    argv = ["data", "prepare", "table", str(table), "--out", str(out)]
    refused([*argv, *(item for option in options for item in ("--option", option))], capsys, *needles)
    assert not out.exists()
    assert leftovers(table.parent.parent) == []


def test_a_latin1_table_is_named_with_its_line(table_folder, capsys):
    table = table_folder / "t.csv"
    table.write_bytes("image,class,caf\xe9,b\n".encode("latin-1") + _rows().encode())
    prepare_refused(table, capsys, str(table), "line 1", "UTF-8")


def test_a_semicolon_separated_table_says_which_delimiter_it_saw(table_folder, capsys):
    table = table_folder / "t.csv"
    table.write_text("image;class;a;b\n" + _rows(delimiter=";"))
    prepare_refused(table, capsys, str(table), "semicolon", "';'")


def test_a_one_class_table_names_the_file_and_the_column(table_folder, capsys):
    table = table_folder / "t.csv"
    table.write_text("image,class,a,b\n" + _rows(classes=1))
    prepare_refused(table, capsys, str(table), "'class'", "one class", "at least 2")


@pytest.mark.parametrize("option, needles", [
    ("image_colum=image", ("--option image_colum", "did you mean 'image_column'")),
    ("colour=blue", ("--option colour", "no option 'colour'")),
    ("val_fraction=abc", ("--option val_fraction", "expected float", "'abc'")),
    ("allow_outside_paths=maybe", ("--option allow_outside_paths", "expected bool")),
    ("attribute_columns=a", ("--option attribute_columns", "a list of str")),
])
def test_a_mistyped_or_wrongly_typed_reader_option_is_named(table_folder, capsys, option, needles):
    table = table_folder / "t.csv"
    table.write_text("image,class,a,b\n" + _rows())
    prepare_refused(table, capsys, *needles, options=(option,))


def _strict_json(text: str):
    def refuse(constant: str):
        raise AssertionError(f"bare {constant} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_an_all_blank_attribute_column_writes_strict_json(table_folder, tmp_path, capsys):
    """The blank attribute has no AUC and the mAUC of nothing is NaN: every JSON record says null."""
    table = table_folder / "t.csv"
    table.write_text("image,class,a,b\n" + "".join(f"img/{i}.png,c{i % 4},{i % 2},\n" for i in range(8)))
    cache = tmp_path / "cache"
    assert main(["data", "prepare", "table", str(table), "--out", str(cache), "--resolution", "32"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *sets(*TINY, f"data.source={cache}", "search.min_positives=0")]) == 0
    capsys.readouterr()
    for path in [*run.glob("*.json"), *cache.glob("*.json")]:
        _strict_json(path.read_text())
    records = [_strict_json(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["mauc"] for r in records if r["phase"] == "evaluate"] == [None]
    assert json.loads((run / "results.json").read_text())["mauc"] is None


# --------------------------------------------------------------------------- damaged run files


def _damage(path: Path, how: str) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"this is not a torch file\n" * 10)


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_a_damaged_search_checkpoint_is_named_by_every_command_that_reads_it(run_copy, tmp_path, capsys, how):
    checkpoint = run_copy / "checkpoints" / "search.pt"
    _damage(checkpoint, how)
    (run_copy / "config.yaml").write_text((run_copy / "config.yaml").read_text().replace(
        "retrain_init: scratch", "retrain_init: supernet"))
    info = json.loads((run_copy / "run.json").read_text())
    info["config"]["search"]["retrain_init"] = "supernet"
    (run_copy / "run.json").write_text(json.dumps(info))
    before = (run_copy / "run.json").read_text()
    for argv in (["search", "--resume", str(run_copy)], ["derive", str(run_copy)], ["retrain", str(run_copy)]):
        refused(argv, capsys, str(checkpoint))
    assert (run_copy / "run.json").read_text() == before  # no resume recorded
    out = tmp_path / "transfer"
    refused(["transfer", "--source", str(run_copy), "--target", "syn1", "--out", str(out)], capsys, str(checkpoint))
    assert not out.exists()
    assert leftovers(run_copy) == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_a_damaged_model_file_is_named(run_copy, capsys, how):
    model = run_copy / "model.pt"
    _damage(model, how)
    refused(["evaluate", str(run_copy)], capsys, str(model))
    assert not (run_copy / "results-test.json").exists()


def test_a_checkpoint_whose_shapes_differ_from_the_config_is_refused(run_copy, capsys):
    config = run_copy / "config.yaml"
    config.write_text(config.read_text().replace("- 256\n", "- 512\n"))
    before = (run_copy / "run.json").read_text()
    refused(["search", "--resume", str(run_copy)], capsys, "space.fc_widths", "search.pt", "restore")
    refused(["derive", str(run_copy)], capsys, "space.fc_widths")
    # A run whose run.json predates the recorded settings: torch's own message, on one line.
    info = json.loads(before)
    del info["config"]
    (run_copy / "run.json").write_text(json.dumps(info))
    refused(["search", "--resume", str(run_copy)], capsys, "search.pt", "size mismatch")
    assert "config" not in json.loads((run_copy / "run.json").read_text())
    assert json.loads((run_copy / "run.json").read_text())["resumes"] == []


def test_a_resume_with_other_settings_than_its_checkpoint_warns_naming_them(run_copy, capsys):
    config = run_copy / "config.yaml"
    settings = yaml.safe_load(config.read_text())
    assert settings["seed"] == 0 and settings["controller"]["lr"] == 0.0001
    settings["seed"], settings["controller"]["lr"] = 3, 0.01
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    assert main(["search", "--resume", str(run_copy)]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "seed 0 -> 3" in err and "controller.lr 0.0001 -> 0.01" in err
    resumes = json.loads((run_copy / "run.json").read_text())["resumes"]
    assert len(resumes) == 1 and resumes[0]["config"]["seed"] == 3
    assert main(["search", "--resume", str(run_copy)]) == 0  # the checkpoint now has these settings
    assert "warning" not in capsys.readouterr().err


# --------------------------------------------------------------------------- a second writer


@pytest.mark.parametrize("argv", [
    ["search", "--resume", "{run}"],
    ["derive", "{run}"],
    ["retrain", "{run}"],
    ["evaluate", "{run}"],
    ["train", "--out", "{run}"],
])
def test_a_run_directory_another_process_writes_is_refused_naming_it(run_copy, capsys, argv):
    from tests.test_lock import Holder

    before = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file() and p.name != ".galm.lock"}
    holder = Holder(run_copy)
    try:
        args = [a.format(run=run_copy) for a in argv] + (sets(*TINY) if argv[0] == "train" else [])
        refused(args, capsys, str(run_copy), f"pid {holder.pid}", "another galm process")
        after = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file() and p.name != ".galm.lock"}
        assert after == before
    finally:
        holder.stop()
    assert not (run_copy / ".galm.lock").exists()


def test_a_new_run_directory_another_process_took_is_refused_and_kept(tmp_path, capsys):
    from tests.test_lock import Holder

    out = tmp_path / "run"
    out.mkdir()
    holder = Holder(out)
    try:
        refused(["search", "--out", str(out), *sets(*TINY)], capsys, f"pid {holder.pid}")
        assert [p.name for p in out.iterdir()] == [".galm.lock"]
    finally:
        holder.stop()


def test_an_experiment_directory_another_process_writes_is_refused(tmp_path, capsys):
    from tests.test_lock import Holder

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "grid"
    out.mkdir()
    holder = Holder(out)
    try:
        refused(["experiment", str(spec), "--out", str(out)], capsys, "experiment directory", f"pid {holder.pid}")
        assert [p.name for p in out.iterdir()] == [".galm.lock"]
    finally:
        holder.stop()


# --------------------------------------------------------------------------- what a killed process left


def _dead_owner() -> str:
    from tests.test_lock import _dead_pid

    from galm.runs.lock import host_tag

    return f"{_dead_pid()}@{host_tag()}"


def test_the_temporaries_of_a_killed_writer_are_removed_on_the_next_start(run_copy, capsys):
    import os
    import time

    from galm.runs.lock import owner_tag

    checkpoints = run_copy / "checkpoints"
    dead = checkpoints / f".search.pt.{_dead_owner()}.abcd1234.tmp"
    unowned = checkpoints / ".search.pt.k2j4h5g6.tmp"  # an earlier release's name, an hour old
    live = checkpoints / f".search.pt.{owner_tag()}.zzzz9999.tmp"  # a write in progress (this process)
    for path in (dead, unowned, live):
        path.write_bytes(b"partial")
    os.utime(unowned, (time.time() - 3600, time.time() - 3600))
    assert main(["derive", str(run_copy)]) == 0
    capsys.readouterr()
    assert not dead.exists() and not unowned.exists() and live.exists()


def test_the_staging_directories_of_a_killed_prepare_are_removed_and_a_moved_cache_put_back(
        table_folder, tmp_path, capsys):
    table = table_folder / "t.csv"
    table.write_text("image,class,a,b\n" + _rows())
    cache = tmp_path / "cache"
    argv = ["data", "prepare", "table", str(table), "--out", str(cache), "--resolution", "32"]
    assert main(argv) == 0
    owner = _dead_owner()
    # Killed while rebuilding: the old cache moved aside, the new one half written in staging.
    cache.rename(tmp_path / f".cache.old-{owner}-{'a' * 32}")
    (tmp_path / f".cache.tmp-{owner}-{'b' * 32}").mkdir()
    (tmp_path / f".cache.tmp-{owner}-{'b' * 32}" / "images.partial.npy").write_bytes(b"half")
    assert main(argv) == 0
    assert "sources and options unchanged" in capsys.readouterr().out  # the old cache came back, reused
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- experiment directories


def _grid_spec(path: Path, seeds: str = "[0]", scenario: str = "sem1") -> Path:
    base = [*TINY, "device=cpu"]
    path.write_text(f"name: {path.stem}\nseeds: {seeds}\nbase: [{', '.join(base)}]\n"
                    f"scenarios:\n  - {{name: {scenario}, kind: semantic, domain: syn1}}\n"
                    "methods: [hand_designed]\n")
    return path


def test_an_experiment_directory_holding_another_spec_is_refused_and_force_extends_it(tmp_path, capsys):
    out = tmp_path / "grid"
    first = _grid_spec(tmp_path / "first.yaml", seeds="[0, 1]")
    assert main(["experiment", str(first), "--out", str(out), "--no-report"]) == 0
    capsys.readouterr()
    tables = (out / "results.md").read_text()
    second = _grid_spec(tmp_path / "second.yaml", seeds="[1]", scenario="again")
    refused(["experiment", str(second), "--out", str(out), "--no-report"], capsys,
            str(out), "another spec", "experiment.json", "seeds", "scenarios", "--force")
    assert (out / "results.md").read_text() == tables
    assert main(["experiment", str(second), "--out", str(out)]) == 2  # with the report too
    capsys.readouterr()
    assert main(["experiment", str(second), "--out", str(out), "--force"]) == 0
    capsys.readouterr()
    text = (out / "results.md").read_text()
    assert "again" in text and "sem1" not in text  # the first spec's scenario left the tables
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0] == "method,again:mauc_mean,again:mauc_std,again:n" and rows[1].endswith(",1")  # n: one seed
    assert [line.split(",")[0] for line in (out / "cells.csv").read_text().splitlines()[1:]] == ["again"]
    assert (out / "cells" / "sem1" / "hand_designed" / "seed0" / "done").is_file()  # kept on disk
    assert "1 of 1 cells finished" in (out / "report.md").read_text()


def test_a_non_empty_directory_that_is_no_experiment_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    spec = _grid_spec(tmp_path / "spec.yaml")
    for extra in ([], ["--force"]):
        refused(["experiment", str(spec), "--out", str(out), *extra], capsys, str(out), "not a galm experiment directory")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("name", ["results.md", "report.html"])
def test_files_galm_did_not_write_in_an_experiment_directory_are_never_overwritten(tmp_path, capsys, name):
    out = tmp_path / "grid"
    spec = _grid_spec(tmp_path / "spec.yaml")
    assert main(["experiment", str(spec), "--out", str(out)]) == 0
    capsys.readouterr()
    (out / name).write_text("my own notes\n")
    for extra in ([], ["--force"]):
        refused(["experiment", str(spec), "--out", str(out), *extra], capsys, str(out / name), "not written by galm")
    if name == "report.html":
        refused(["report", str(out)], capsys, str(out / name), "not written by galm")
    assert (out / name).read_text() == "my own notes\n"


def test_an_experiment_directory_of_an_earlier_release_is_resumed(tmp_path, capsys):
    """No written.json and no cell hashes in experiment.json: its own tables are recognised."""
    out = tmp_path / "grid"
    spec = _grid_spec(tmp_path / "spec.yaml")
    assert main(["experiment", str(spec), "--out", str(out)]) == 0
    capsys.readouterr()
    (out / "written.json").unlink()
    record = json.loads((out / "experiment.json").read_text())
    del record["cells"]
    (out / "experiment.json").write_text(json.dumps(record))
    assert main(["experiment", str(spec), "--out", str(out)]) == 0
    assert "already finished" in capsys.readouterr().out


def test_a_cell_another_process_writes_stops_the_grid_naming_it(tmp_path, capsys):
    from tests.test_lock import Holder

    out = tmp_path / "grid"
    cell = out / "cells" / "sem1" / "hand_designed" / "seed0"
    assert main(["experiment", str(_grid_spec(tmp_path / "spec.yaml", seeds="[1]")), "--out", str(out)]) == 0
    capsys.readouterr()
    cell.mkdir(parents=True)
    holder = Holder(cell)  # e.g. a `galm derive` of that cell
    try:
        refused(["experiment", str(_grid_spec(tmp_path / "spec.yaml")), "--out", str(out), "--force"], capsys,
                "cell directory", f"pid {holder.pid}")
        assert [p.name for p in cell.iterdir()] == [".galm.lock"]
    finally:
        holder.stop()


@pytest.mark.parametrize("argv", [
    ["experiment", "{spec}", "--out", "{file}"],
    ["data", "prepare", "table", "{table}", "--out", "{file}"],
    ["search", "--out", "{file}", *sets(*TINY)],
])
def test_out_naming_a_file_is_refused_by_every_command(tmp_path, table_folder, capsys, argv):
    spec = _grid_spec(tmp_path / "spec.yaml")
    table = table_folder / "t.csv"
    table.write_text("image,class,a,b\n" + _rows())
    target = tmp_path / "a-file"
    target.write_text("mine")
    refused([a.format(spec=spec, file=target, table=table) for a in argv], capsys, str(target))
    assert target.read_text() == "mine"
