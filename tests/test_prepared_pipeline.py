"""Prepared benchmark and custom-table domains go through info, train and search like the built-in data."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from galm.cli import main
from tests.test_data_commands import make_table
from tests.test_readers_cub import write_cub

TINY_RUN = [
    "--set", "space.resolution=32", "--set", "data.synthetic.resolution=32", "--set", "train.epochs=1",
    "--set", "train.batch_size=8", "--set", "threads=1", "--set", "search.episodes=1",
    "--set", "search.shared_steps=2", "--set", "search.controller_steps=2", "--set", "search.batch_size=8",
    "--set", "search.controller_attributes_per_step=0", "--set", "search.min_positives=1",
]


def _prepare_info_train_search(format_name: str, root: Path, tmp_path: Path, capsys) -> None:
    torch.set_num_threads(1)
    cache = tmp_path / f"{format_name}-cache"
    assert main(["data", "prepare", format_name, str(root), "--out", str(cache), "--resolution", "32"]) == 0
    assert main(["data", "info", str(cache)]) == 0
    assert "splits:" in capsys.readouterr().out
    source = ["--set", f"data.source={cache}"]
    assert main(["train", "--out", str(tmp_path / f"{format_name}-train"), *source, *TINY_RUN]) == 0
    search_dir = tmp_path / f"{format_name}-search"
    assert main(["search", "--out", str(search_dir), "--retrain", *source, *TINY_RUN]) == 0
    archs = json.loads((search_dir / "architectures.json").read_text())
    results = json.loads((search_dir / "results.json").read_text())
    assert set(archs) == set(results["per_attribute_auc"]) | set(results["undefined_attributes"])


def test_cub_layout_prepares_and_searches(tmp_path: Path, capsys) -> None:
    root = write_cub(tmp_path / "cub")
    _prepare_info_train_search("cub", root / "CUB_200_2011", tmp_path, capsys)


def test_custom_table_prepares_and_searches(tmp_path: Path, capsys) -> None:
    _prepare_info_train_search("table", make_table(tmp_path / "table"), tmp_path, capsys)
