"""`galm predict` and `galm.Predictor`: the pixel pipeline of training, thresholds, outputs, bad input."""

from __future__ import annotations

import csv
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from galm.cli import main
from galm.data.prepare.decode import decode_one
from galm.data.sources import config_domain
from galm.engine.batches import images_to_tensor
from galm.predict import Predictor
from galm.predict.trained_run import open_trained_run
from galm.runs.directory import RunDirectory
from galm.runs.model_file import load_model
from galm.runs.thresholds import read_thresholds
from galm.training.calibration import best_threshold, calibrate_thresholds
from galm.training.train import predict as training_predict
from support import tiny_trained_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return tiny_trained_run(tmp_path_factory.mktemp("predict") / "run")


@pytest.fixture()
def images(tmp_path) -> Path:
    """A folder of generated photographs of several sizes and formats (one in a sub-folder)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    (folder / "more").mkdir(parents=True)
    for i, (w, h) in enumerate([(48, 40), (31, 57), (64, 64)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    Image.fromarray(rng.integers(0, 256, (70, 50, 3), dtype=np.uint8)).save(folder / "more" / "photo.jpg", quality=90)
    (folder / "notes.txt").write_text("not an image")
    return folder


def _copy_run(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run-copy"
    shutil.copytree(trained, copy)
    return copy


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- thresholds -------------------------------------------------------------------------------


def test_best_threshold_maximises_balanced_accuracy_as_a_brute_force_search_does():
    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(2, 25))
        labels = rng.integers(0, 2, n).astype(float)
        if labels.min() == labels.max():
            continue
        scores = np.round(rng.random(n), 1)  # ties on purpose
        threshold, balanced = best_threshold(scores, labels)
        decided = scores >= threshold
        achieved = (decided[labels == 1].mean() + (~decided[labels == 0]).mean()) / 2
        brute = max((((scores >= c)[labels == 1]).mean() + (~(scores >= c))[labels == 0].mean()) / 2
                    for c in [*np.unique(scores), 1.5])
        assert 0.0 <= threshold <= 1.0
        assert achieved == pytest.approx(balanced) and balanced == pytest.approx(brute)
    assert best_threshold(np.array([0.1, 0.2, 0.7, 0.9]), np.array([0, 0, 1, 1])) == (pytest.approx(0.45), 1.0)


def test_an_attribute_with_one_class_on_val_keeps_half_and_says_why():
    record = calibrate_thresholds(np.array([[0.2, 0.9], [0.8, 0.7]]), np.array([[0, 1], [1, np.nan]]), ["a", "b"], "val")
    assert record["attributes"]["a"]["threshold"] == pytest.approx(0.5)  # halfway between 0.2 and 0.8
    assert record["attributes"]["b"]["threshold"] == 0.5 and "1 positives and 0 negatives" in record["attributes"]["b"]["note"]


def test_training_records_calibrated_thresholds_and_the_pixel_pipeline(trained):
    run = RunDirectory.open(trained)
    record = json.loads(run.thresholds_path.read_text())
    names = load_model(run.model_path)[1]
    assert record["split"] == "val" and record["criterion"] == "balanced_accuracy"
    assert read_thresholds(run.thresholds_path, names) == [record["attributes"][n]["threshold"] for n in names]
    # The recorded thresholds are the best balanced accuracy on the run's validation split.
    net, _ = load_model(run.model_path)
    domain = config_domain(run.config())
    scores = training_predict(net, domain, "val")
    labels = domain.labels[domain.split("val")]
    for a, name in enumerate(names):
        entry = record["attributes"][name]
        if entry["balanced_accuracy"] is not None:
            assert best_threshold(scores[:, a].astype(np.float64), labels[:, a]) == pytest.approx(
                (entry["threshold"], entry["balanced_accuracy"]))
    pipeline = json.loads(run.preprocessing_path.read_text())
    assert pipeline["resolution"] == 32 and pipeline["resize"] == "center_crop"
    assert pipeline["mean"] == [127.5] * 3 and pipeline["std"] == [64.0] * 3
    assert Predictor.from_run(trained).card.calibrated_thresholds == read_thresholds(run.thresholds_path, names)


# --- the pixel pipeline of training -------------------------------------------------------------


def test_predict_equals_the_fixed_network_on_the_same_decoded_batch(trained, images):
    predictor = Predictor.from_run(trained)
    paths = sorted(p for p in images.rglob("*") if p.suffix in (".png", ".jpg"))
    result = predictor.predict(paths, batch_size=2)
    assert result.names == [str(p) for p in paths] and not result.failures
    decoded = np.stack([decode_one((str(p), None, 32, "center_crop", 0.0))[1] for p in paths])
    net, names = load_model(Path(trained) / "model.pt")
    with torch.no_grad():
        expected = torch.sigmoid(net.eval()(images_to_tensor(decoded))).numpy()
    np.testing.assert_allclose(result.probabilities, expected, rtol=0, atol=1e-6)
    assert result.attribute_names == names and result.probabilities.shape == (4, 5)
    np.testing.assert_array_equal(result.decisions, result.probabilities >= 0.5)


def test_arrays_and_pil_images_give_what_training_scored(trained):
    """The domain's own (already square) test images through the predictor: the scores of training."""
    run = RunDirectory.open(trained)
    domain = config_domain(run.config())
    net, _ = load_model(run.model_path)
    expected = training_predict(net, domain, "test")
    test_images = domain.images[domain.split("test")]
    predictor = Predictor.from_run(trained)
    np.testing.assert_allclose(predictor.predict(test_images).probabilities, expected, rtol=0, atol=1e-6)
    as_pil = predictor.predict([Image.fromarray(test_images[0]), test_images[1]])
    np.testing.assert_allclose(as_pil.probabilities, expected[:2], rtol=0, atol=1e-6)
    assert as_pil.names == ["<image 0>", "<image 1>"]


def test_pad_mode_of_the_run_is_applied(trained, tmp_path, images):
    run = _copy_run(trained, tmp_path)
    record = json.loads((run / "preprocessing.json").read_text())
    (run / "preprocessing.json").write_text(json.dumps({**record, "resize": "pad"}))
    path = images / "img1.png"  # 31 x 57: padding and cropping differ
    padded = decode_one((str(path), None, 32, "pad", 0.0))[1]
    net, _ = load_model(run / "model.pt")
    with torch.no_grad():
        expected = torch.sigmoid(net.eval()(images_to_tensor(padded[None].copy()))).numpy()
    np.testing.assert_allclose(Predictor.from_run(run).predict(path).probabilities, expected, atol=1e-6)


def test_a_run_from_before_preprocessing_json_falls_back_to_its_configuration(trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    (run / "preprocessing.json").unlink()
    opened = open_trained_run(run)
    assert (opened.pipeline.resolution, opened.pipeline.resize) == (32, "center_crop")
    assert "no preprocessing.json" in opened.pipeline_origin


# --- the command and its outputs ------------------------------------------------------------------


def test_predict_command_writes_csv_jsonl_and_parquet(trained, images, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(trained), str(images), "--out", str(out), "--batch-size", "3"]) == 0
    rows = _read_csv(out)
    names = load_model(Path(trained) / "model.pt")[1]
    assert len(rows) == 4 and list(rows[0]) == ["path", *(f"{n}_{k}" for n in names for k in ("probability", "decision"))]
    for row in rows:
        for name in names:
            assert int(row[f"{name}_decision"]) == (float(row[f"{name}_probability"]) >= 0.5)
    library = Predictor.from_run(trained).predict([Path(r["path"]) for r in rows])
    np.testing.assert_allclose([[float(r[f"{n}_probability"]) for n in names] for r in rows],
                               library.probabilities, rtol=1e-6)
    jsonl = tmp_path / "predictions.jsonl"
    assert main(["predict", str(trained), str(images / "img0.png"), "--out", str(jsonl), "--threshold", "calibrated"]) == 0
    record = json.loads(jsonl.read_text().splitlines()[0])
    thresholds = json.loads((Path(trained) / "thresholds.json").read_text())["attributes"]
    assert record["path"] == str(images / "img0.png")
    assert all(record["decisions"][n] == (record["probabilities"][n] >= thresholds[n]["threshold"]) for n in names)
    pytest.importorskip("pyarrow")
    parquet = tmp_path / "predictions.parquet"
    assert main(["predict", str(trained), str(images), "--out", str(parquet)]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(parquet).to_pylist()
    assert [t["path"] for t in table] == [r["path"] for r in rows]
    assert table[0][f"{names[0]}_probability"] == pytest.approx(float(rows[0][f"{names[0]}_probability"]), rel=1e-6)


def test_predict_reads_a_table_with_paths_relative_to_it(trained, images, tmp_path):
    table = images / "list.csv"
    table.write_text("file,label\nimg0.png,1\nmore/photo.jpg,0\n")
    out = tmp_path / "p.csv"
    assert main(["predict", str(trained), "--table", str(table), "--image-column", "file", "--out", str(out)]) == 0
    assert [r["path"] for r in _read_csv(out)] == [str(images / "img0.png"), str(images / "more" / "photo.jpg")]
    assert main(["predict", str(trained), "--table", str(table), "--out", str(tmp_path / "q.csv")]) == 2
    assert not (tmp_path / "q.csv").exists()


def test_result_to_pandas(trained, images):
    pd = pytest.importorskip("pandas")
    frame = Predictor.from_run(trained).predict(images / "img0.png").to_pandas()
    assert isinstance(frame, pd.DataFrame) and frame.shape == (1, 11) and frame["path"][0].endswith("img0.png")


# --- bad input ------------------------------------------------------------------------------------


def _fails(argv: list[str], capsys, *needles: str, code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, err
    return err


def test_bad_runs_paths_folders_and_tables_are_named(trained, images, tmp_path, capsys):
    out = tmp_path / "out.csv"
    no_model = _copy_run(trained, tmp_path)
    (no_model / "model.pt").unlink()
    _fails(["predict", str(no_model), str(images), "--out", str(out)], capsys, "no trained model (model.pt)", str(no_model))
    missing = images / "nope.jpg"
    _fails(["predict", str(trained), str(missing), "--out", str(out)], capsys, f"image path {missing} does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    _fails(["predict", str(trained), str(empty), "--out", str(out)], capsys, f"folder {empty} holds no images")
    table = tmp_path / "t.csv"
    table.write_text("path,x\nimg0.png,1\n")
    _fails(["predict", str(trained), "--table", str(table), "--out", str(out)], capsys, str(table), "no column 'image'")
    _fails(["predict", str(trained), str(images), "--out", str(out), "--threshold", "2"], capsys, "--threshold")
    assert not out.exists()


def test_calibrated_thresholds_missing_from_an_older_run_is_a_clear_error(trained, images, tmp_path, capsys):
    run = _copy_run(trained, tmp_path)
    (run / "thresholds.json").unlink()
    out = tmp_path / "out.csv"
    _fails(["predict", str(run), str(images), "--out", str(out), "--threshold", "calibrated"], capsys,
           "no calibrated thresholds (thresholds.json", "--threshold 0.5")
    assert not out.exists()
    assert main(["predict", str(run), str(images), "--out", str(out)]) == 0  # a number still works


def test_architectures_that_disagree_with_the_weights_are_refused(trained, images, tmp_path, capsys):
    run = _copy_run(trained, tmp_path)
    archs = json.loads((run / "architectures.json").read_text())
    first = next(iter(archs))
    other = "c4k3s0-c5k3s0-f64-f64-o1" if archs[first]["short"] != "c4k3s0-c5k3s0-f64-f64-o1" else "c4k5s0-c5k5s0-f64-f64-o1"
    archs[first] = {"short": other, "architecture": other}
    (run / "architectures.json").write_text(json.dumps(archs))
    out = tmp_path / "out.csv"
    _fails(["predict", str(run), str(images), "--out", str(out)], capsys, "disagree", repr(first), "architectures.json")
    assert not out.exists()


def test_undecodable_files_are_reported_and_the_rest_predicted(trained, images, tmp_path, capsys):
    (images / "empty.jpg").write_bytes(b"")
    full = (images / "more" / "photo.jpg").read_bytes()
    (images / "truncated.jpg").write_bytes(full[: len(full) // 2])
    out = tmp_path / "out.csv"
    err = _fails(["predict", str(trained), str(images), "--out", str(out)], capsys,
                 f"skipped {images / 'empty.jpg'}: the file is empty (0 bytes)", f"skipped {images / 'truncated.jpg'}",
                 "2 images could not be decoded", code=3)
    assert "truncated" in err.split(str(images / "truncated.jpg"))[1].splitlines()[0]
    assert len(_read_csv(out)) == 4
    strict = tmp_path / "strict.csv"
    _fails(["predict", str(trained), str(images), "--out", str(strict), "--strict"], capsys, "empty.jpg", "cannot decode")
    assert not strict.exists()
    _fails(["predict", str(trained), str(images / "empty.jpg"), "--out", str(strict)], capsys, "none of the 1 images")
    assert not strict.exists()


def test_grey_cmyk_rgba_and_16_bit_images_are_converted(trained, tmp_path):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    folder = tmp_path / "modes"
    folder.mkdir()
    Image.fromarray(grey).save(folder / "grey.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(np.dstack([rgb, np.full((40, 40), 255, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(folder / "grey16.png")
    assert Image.open(folder / "grey16.png").mode.startswith("I")
    predictor = Predictor.from_run(trained)
    result = predictor.predict(sorted(folder.iterdir()))
    assert not result.failures and len(result) == 4
    by_name = {Path(n).name: i for i, n in enumerate(result.names)}
    # 16-bit greyscale is scaled to 8 bits, not clipped to white: the same image as its 8-bit twin.
    np.testing.assert_allclose(result.probabilities[by_name["grey16.png"]], result.probabilities[by_name["grey.png"]],
                               atol=1e-6)
    # An opaque RGBA image is its RGB image.
    np.testing.assert_allclose(result.probabilities[by_name["rgba.png"]], predictor.predict(rgb).probabilities[0],
                               atol=1e-6)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares width x height pixels but holds (almost) no data: a decompression bomb stand-in."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                     + chunk(b"IEND", b""))


def test_huge_images_are_refused_by_the_size_guard_not_decoded(trained, tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 40000, 40000)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((100, 120, 3), np.uint8)).save(small)
    predictor = Predictor.from_run(trained)
    result = predictor.predict([bomb, small])
    assert result.names == [str(small)] and result.failures[0][0] == str(bomb)
    assert "1,600,000,000 pixels" in result.failures[0][1] or "exceeds limit" in result.failures[0][1]
    # Just above the limit (where Pillow only warns) the guard refuses too, naming the size.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 120 - 1)
    failure = predictor.predict([small]).failures[0]
    assert "120x100 image (12,000 pixels to decode) is over the limit of 11,999" in failure[1]


def test_demo_samples_can_be_predicted_from_their_table(trained, tmp_path):
    from galm.experiments.demo import write_samples

    run = RunDirectory.open(trained)
    domain = config_domain(run.config())
    target = RunDirectory(tmp_path / "demo-like")
    write_samples(target, domain, n=4)
    table = target.samples_dir / "samples.csv"
    rows = _read_csv(table)
    assert len(rows) == 4 and list(rows[0]) == ["image", *domain.attribute_names]
    out = tmp_path / "p.csv"
    assert main(["predict", str(trained), "--table", str(table), "--image-column", "image", "--out", str(out)]) == 0
    net, _ = load_model(run.model_path)
    test = domain.split("test")
    indices = [int(r["image"][5:10]) for r in rows]
    assert set(indices) <= set(test.tolist())
    expected = training_predict(net, domain, "test")[[test.tolist().index(i) for i in indices]]
    got = [[float(r[f"{n}_probability"]) for n in domain.attribute_names] for r in _read_csv(out)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_a_pil_image_is_left_as_given_and_thresholds_can_be_per_attribute(trained, images):
    path = images / "more" / "photo.jpg"
    predictor = Predictor.from_run(trained)
    with Image.open(path) as opened:
        from_pil = predictor.predict(opened, threshold=[0.1, 0.2, 0.3, 0.4, 0.99])
        assert opened.size == (50, 70) and opened.format == "JPEG"
    from_path = predictor.predict(path)
    np.testing.assert_allclose(from_pil.probabilities, from_path.probabilities, atol=1e-6)
    np.testing.assert_array_equal(from_pil.decisions, from_pil.probabilities >= [0.1, 0.2, 0.3, 0.4, 0.99])
    with pytest.raises(ValueError, match="one number in \\[0, 1\\] or 5 of them"):
        predictor.thresholds([0.5, 0.5])
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict(np.zeros((8, 8, 3), np.float32), strict=True)


def test_decoding_workers_keep_the_order_of_mixed_inputs(trained, images):
    paths = sorted(p for p in images.rglob("*") if p.suffix in (".png", ".jpg"))
    array = np.random.default_rng(5).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    mixed = [paths[0], array, *paths[1:], images / "missing.png"]
    predictor = Predictor.from_run(trained)
    one, two = predictor.predict(mixed, workers=1), predictor.predict(mixed, workers=2)
    assert one.names == two.names == [str(paths[0]), "<image 1>", *map(str, paths[1:])]
    assert one.failures == two.failures and one.failures[0][0] == str(images / "missing.png")
    np.testing.assert_array_equal(one.probabilities, two.probabilities)
