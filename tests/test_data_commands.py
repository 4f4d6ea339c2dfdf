"""Tests for the `galm data` subcommands and a prepared table used by `galm train`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from galm.cli import data as commands
from galm.data.prepare import open_prepared


def parser() -> argparse.ArgumentParser:
    """A parser like galm's, with only the data command registered."""
    top = argparse.ArgumentParser(prog="galm")
    commands.register(top.add_subparsers(dest="command", required=True))
    return top


def galm_data(*argv: str) -> int:
    return commands.run(parser().parse_args(["data", *argv]))


def make_table(folder: Path, n_classes: int = 8, per_class: int = 6) -> Path:
    """Classes 6 and 7 are the test split (split column); 'a' and 'b' vary on test, 'const' does not."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = ["image,class,split,a,b,const"]
    for c in range(n_classes):
        for k in range(per_class):
            name = f"img/c{c}_{k}.jpg"
            pixels = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
            pixels[..., 0] = 255 if c % 2 else 0  # attribute 'a' is visible in the red channel
            Image.fromarray(pixels).save(folder / name)
            split = "test" if c >= n_classes - 2 else ("val" if k == 0 else "train")
            b = "yes" if c in (1, 2, 4, 7) else "no"
            const = "" if (c == 0 and k == 1) else "0"
            lines.append(f"{name},class{c},{split},{c % 2},{b},{const}")
    path = folder / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_prepare_and_info(tmp_path: Path, capsys) -> None:
    table = make_table(tmp_path)
    out = tmp_path / "cache"
    assert galm_data("prepare", "table", str(table), "--out", str(out), "--resolution", "16",
                     "--resize", "pad", "--option", "seed=3") == 0
    printed = capsys.readouterr().out
    assert "prepared" in printed and f"data.source={out}" in printed
    assert open_prepared(out).resolution == 16
    assert galm_data("prepare", "table", str(table), "--out", str(out), "--resolution", "16",
                     "--resize", "pad", "--option", "seed=3") == 0
    assert "reused" in capsys.readouterr().out

    assert galm_data("info", str(out)) == 0
    info = capsys.readouterr().out
    assert "images: 48 (16x16 pixels)" in info
    assert "classes: 8" in info and "attributes: 3" in info and "label level: class" in info
    assert "train  30 images, 6 classes" in info
    assert "val    6 images, 6 classes" in info
    assert "test   12 images, 2 classes" in info
    assert "prepared from: table" in info and "resize pad" in info
    constant = info.split("constant attributes")[1]
    assert "train  const" in constant and "test   const" in constant
    rate_line = next(line for line in info.splitlines() if line.strip().startswith("a "))
    assert rate_line.split()[1:] == ["0.500", "0.500", "0.500"]


def test_prepare_from_spec_via_cli(tmp_path: Path, capsys) -> None:
    make_table(tmp_path, n_classes=4, per_class=2)
    spec = tmp_path / "spec.yaml"
    spec.write_text("format: table\nroot: table.csv\nout: cache\nresolution: 8\n")
    assert galm_data("prepare", "--spec", str(spec), "--resolution", "12") == 0
    assert open_prepared(tmp_path / "cache").resolution == 12
    with pytest.raises(ValueError, match="not both"):
        galm_data("prepare", "table", "x.csv", "--spec", str(spec))


def test_cli_errors(tmp_path: Path) -> None:
    table = make_table(tmp_path, n_classes=4, per_class=2)
    with pytest.raises(ValueError, match="needs --out"):
        galm_data("prepare", "table", str(table))
    with pytest.raises(ValueError, match="needs FORMAT ROOT"):
        galm_data("prepare")
    with pytest.raises(ValueError, match="unknown format 'zzz'"):
        galm_data("prepare", "zzz", str(tmp_path), "--out", str(tmp_path / "c"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        galm_data("prepare", "table", str(tmp_path / "none.csv"), "--out", str(tmp_path / "c"))
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        galm_data("prepare", "table", str(table), "--out", str(tmp_path / "c"), "--option", "seed")
    with pytest.raises(FileNotFoundError, match="not a prepared domain"):
        galm_data("info", str(tmp_path))
    bad = tmp_path / "bad.csv"
    bad.write_text(table.read_text().replace("img/c1_1.jpg,class1,train,1", "img/c1_1.jpg,class1,train,2"))
    with pytest.raises(ValueError, match=r"bad\.csv, line 5, column 'a': '2'"):
        galm_data("prepare", "table", str(bad), "--out", str(tmp_path / "c"))


def test_parse_options() -> None:
    assert commands.parse_options(["seed=3", "class_column=none", "domain=birds", "attribute_columns=[a, b]",
                                   "val_fraction=0.1", "split_column=null"]) == {
        "seed": 3, "class_column": None, "domain": "birds", "attribute_columns": ["a", "b"],
        "val_fraction": 0.1, "split_column": None}
    with pytest.raises(ValueError, match="given twice"):
        commands.parse_options(["seed=1", "seed=2"])


def test_prepared_table_trains_with_galm_train(tmp_path: Path) -> None:
    from galm.cli import main

    torch.set_num_threads(1)
    table = make_table(tmp_path)
    cache = tmp_path / "cache"
    assert galm_data("prepare", "table", str(table), "--out", str(cache), "--resolution", "32") == 0
    run = tmp_path / "run"
    code = main(["train", "--out", str(run), "--set", f"data.source={cache}", "--set", "space.resolution=32",
                 "--set", "data.synthetic.resolution=32", "--set", "train.epochs=1",
                 "--set", "train.batch_size=16", "--set", "threads=1"])
    assert code == 0
    results = json.loads((run / "results.json").read_text())
    assert results["split"] == "test"
    assert results["n_attributes_scored"] + results["n_attributes_undefined"] == 3
    assert set(results["per_attribute_auc"]) == {"a", "b"}  # 'const' has no AUC on test
