"""`galm export`: ONNX (onnxruntime) and pt2 (torch.export) files that agree with PyTorch within 1e-4,
carry their metadata, and are refused (nothing written) when they would not."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from galm.cli import main
from galm.engine.batches import images_to_tensor
from galm.predict import Predictor
from galm.predict import export as export_module
from galm.predict.export import ExportMismatch, export_run
from galm.predict.metadata import PT2_EXTRA_FILE
from galm.runs.model_file import load_model
from support import tiny_trained_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return tiny_trained_run(tmp_path_factory.mktemp("export") / "run")


def _pixels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_onnx_export_agrees_with_pytorch_and_carries_its_metadata(trained, tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "model.onnx"
    assert main(["export", str(trained), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "max abs logit difference against PyTorch" in printed and "val images of syn1" in printed
    model = onnx.load(str(out))
    props = {p.key: p.value for p in model.metadata_props}
    net, names = load_model(Path(trained) / "model.pt")
    thresholds = json.loads((Path(trained) / "thresholds.json").read_text())["attributes"]
    assert json.loads(props["attribute_names"]) == names and props["resolution"] == "32"
    assert props["resize"] == "center_crop" and json.loads(props["mean"]) == [127.5] * 3
    assert json.loads(props["std"]) == [64.0] * 3 and props["galm_version"]
    assert json.loads(props["thresholds"]) == [thresholds[n]["threshold"] for n in names]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"] and [o.name for o in session.get_outputs()] == ["logits"]
    for n in (1, 5):  # the batch dimension is dynamic
        images = images_to_tensor(_pixels(n, seed=n)).contiguous()
        with torch.no_grad():
            expected = net.eval()(images).numpy()
        got = session.run(["logits"], {"images": images.numpy()})[0]
        assert got.shape == (n, len(names)) and np.abs(got - expected).max() <= 1e-4
    # The library and the command line predict through the ONNX file as through the run.
    pixels = _pixels(3, seed=7)
    from_onnx = Predictor.from_onnx(out).predict(pixels, threshold="calibrated")
    from_run = Predictor.from_run(trained).predict(pixels, threshold="calibrated")
    np.testing.assert_allclose(from_onnx.probabilities, from_run.probabilities, atol=1e-5)
    image = tmp_path / "a.png"
    Image.fromarray(pixels[0]).save(image)
    assert main(["predict", str(out), str(image), "--out", str(tmp_path / "p.csv")]) == 0


def test_pt2_export_is_reloaded_and_agrees_with_pytorch(trained, tmp_path):
    out = tmp_path / "model.pt2"
    report = export_run(trained, "pt2", out)
    assert report.max_abs_difference <= 1e-4 and out.is_file()
    extra = {PT2_EXTRA_FILE: ""}
    program = torch.export.load(str(out), extra_files=extra)
    card = json.loads(extra[PT2_EXTRA_FILE])
    net, names = load_model(Path(trained) / "model.pt")
    assert json.loads(card["attribute_names"]) == names
    images = images_to_tensor(_pixels(4)).contiguous()
    with torch.no_grad():
        assert torch.allclose(program.module()(images), net.eval()(images), atol=1e-4)


def test_an_export_that_disagrees_with_pytorch_is_not_written(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)
    out = tmp_path / "model.pt2"
    with pytest.raises(ExportMismatch, match="differs from PyTorch"):
        export_run(trained, "pt2", out)
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_run_whose_architectures_disagree_with_its_weights_is_refused(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    archs = json.loads((run / "architectures.json").read_text())
    first = next(iter(archs))
    other = "c4k3s0-c5k3s0-f64-f64-o1" if archs[first]["short"] != "c4k3s0-c5k3s0-f64-f64-o1" else "c4k5s0-c5k5s0-f64-f64-o1"
    archs[first] = other
    (run / "architectures.json").write_text(json.dumps(archs))
    out = tmp_path / "model.pt2"
    assert main(["export", str(run), "--format", "pt2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "architectures.json" in err and "model.pt disagree" in err and repr(first) in err
    assert not out.exists()
    (run / "model.pt").write_bytes(b"not a model")
    assert main(["export", str(run), "--format", "pt2", "--out", str(out)]) == 2
    assert "model.pt" in capsys.readouterr().err and not out.exists()


def test_the_readme_onnx_example_runs_without_galm_and_agrees(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("Without galm, an exported file needs only")[1].split("```python\n")[1].split("```")[0]
    model = tmp_path / "model.onnx"
    export_run(trained, "onnx", model)
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(photo)
    code = "import sys\nsys.modules['galm'] = None  # the example must not need galm\n" + snippet
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    printed = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    expected = Predictor.from_onnx(model).predict(photo)
    assert list(printed) == expected.attribute_names
    np.testing.assert_allclose(list(printed.values()), expected.probabilities[0], atol=1.5e-3)
