"""Files from elsewhere are data: a crafted checkpoint or model never runs code when galm loads it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from galm.cli import main
from galm.runs.torch_files import UnsafeOrDamagedFile, load_plain
from tests.support import TINY_SEARCH

# The shared tiny search, over two domains (a transfer needs a target) and retrained from the supernet.
TINY = [*(s.replace("n_domains=1", "n_domains=2") for s in TINY_SEARCH),
        "train.epochs=1", "train.batch_size=16", "search.shared_steps=1", "search.retrain_init=supernet"]


class RunsCode:
    """Unpickling this runs a shell command: what a crafted file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def crafted_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("untrusted")
    run = root / "run"
    sets = [item for s in TINY for item in ("--set", s)]
    assert main(["search", "--out", str(run), *sets]) == 0
    marker = root / "marker"
    checkpoint = run / "checkpoints" / "search.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["version"] = RunsCode(marker)
    torch.save(state, checkpoint)
    return run, marker


@pytest.mark.parametrize("argv", [
    ["search", "--resume", "{run}"],
    ["derive", "{run}"],
    ["retrain", "{run}"],
    ["transfer", "--source", "{run}", "--target", "syn2", "--out", "{out}"],
])
def test_a_crafted_checkpoint_is_refused_and_runs_nothing(crafted_run, tmp_path, capsys, argv):
    run, marker = crafted_run
    args = [a.format(run=run, out=tmp_path / "transfer") for a in argv]
    if argv[0] == "transfer":
        args += [item for s in TINY for item in ("--set", s)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "refusing to load" in err and "search.pt" in err
    assert not marker.exists()


def test_a_crafted_model_file_is_refused(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "architectures": RunsCode(marker)}, path)
    with pytest.raises(UnsafeOrDamagedFile, match="refusing to load"):
        load_plain(path, "model file")
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", None])
def test_damaged_files_get_a_message_naming_them(tmp_path, content):
    path = tmp_path / "search.pt"
    if content is None:  # a real checkpoint cut in half
        torch.save({"w": torch.zeros(1000)}, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(UnsafeOrDamagedFile, match=str(path)):
        load_plain(path, "search checkpoint")
