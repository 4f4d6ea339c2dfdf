import json

import pytest
import yaml

from galm.cli import main
from galm.config.reader import read_config
from galm.config.typed import ConfigError

TINY = [
    "--set", "space.resolution=32", "--set", "data.synthetic.resolution=32",
    "--set", "data.synthetic.classes_per_domain=6", "--set", "data.synthetic.images_per_class=8",
    "--set", "data.synthetic.attributes_per_domain=5", "--set", "data.synthetic.n_domains=2",
    "--set", "train.epochs=1", "--set", "train.batch_size=16", "--set", "threads=1",
]


def test_train_writes_a_complete_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--arch", "random", *TINY]) == 0
    for name in ("config.yaml", "run.json", "metrics.jsonl", "architectures.json", "results.json", "model.pt"):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").iterdir())
    results = json.loads((run / "results.json").read_text())
    for key in ("mauc", "per_attribute_auc", "n_attributes_scored", "n_attributes_undefined", "split"):
        assert key in results
    assert results["split"] == "test"
    assert results["n_attributes_scored"] + results["n_attributes_undefined"] == 5
    archs = json.loads((run / "architectures.json").read_text())
    assert len(archs) == 5 and all("short" in record for record in archs.values())
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["space"]["resolution"] == 32 and config["train"]["epochs"] == 1
    assert "git_revision" in json.loads((run / "run.json").read_text())
    assert "mAUC on test" in capsys.readouterr().out


def test_train_with_one_architecture_for_all_and_from_a_json_file(tmp_path):
    first = tmp_path / "a"
    assert main(["train", "--out", str(first), "--arch", "c4k5s12-c5k3s3-f128-f64-o2", *TINY]) == 0
    archs = json.loads((first / "architectures.json").read_text())
    assert {record["short"] for record in archs.values()} == {"c4k5s12-c5k3s3-f128-f64-o2"}
    second = tmp_path / "b"
    assert main(["train", "--out", str(second), "--arch", str(first / "architectures.json"), *TINY]) == 0
    assert json.loads((second / "architectures.json").read_text()) == archs


def test_cli_reports_bad_input_clearly(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "x"), "--set", "train.lrr=1"]) == 2
    assert "train.lr" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "y"), "--arch", "c4k9", *TINY]) == 2
    assert "architecture string" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "z"), "--set", "data.source=/nonexistent", *TINY]) == 2
    assert "/nonexistent" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()


def test_existing_run_directory_is_not_overwritten(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text("{}")
    assert main(["train", "--out", str(run), *TINY]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (run / "results.json").read_text() == "{}"


def test_config_file_and_type_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 3\nspace:\n  fc_widths: [32, 64]\n")
    config = read_config(path, ["train.lr=0.01"])
    assert config.train.epochs == 3 and config.space.fc_widths == (32, 64) and config.train.lr == 0.01
    path.write_text("train:\n  epochs: three\n")
    with pytest.raises(ConfigError, match="train.epochs"):
        read_config(path)
    with pytest.raises(ConfigError, match="data.synthetic.resolution"):
        read_config(None, ["space.resolution=224"])


def test_space_command_lists_decisions(capsys):
    assert main(["space"]) == 0
    out = capsys.readouterr().out
    assert "2304 architectures" in out and "fc3_input" in out


@pytest.mark.parametrize("name, argv", [("default", []), ("paper", ["--preset", "paper"])])
def test_checked_in_configs_match_the_code(capsys, name, argv):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml"
    assert main(["config", *argv]) == 0
    assert path.read_text() == capsys.readouterr().out


def test_paper_preset_has_the_papers_scale_and_set_still_overrides_it(capsys):
    assert main(["config", "--preset", "paper", "--set", "search.episodes=3"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["space"]["resolution"] == 224 and config["data"]["synthetic"]["attributes_per_domain"] == 251
    assert config["search"]["controller_steps"] == 2000 and config["search"]["episodes"] == 3
