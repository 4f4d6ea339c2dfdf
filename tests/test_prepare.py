"""Tests for the prepared cache: decoding, cropping, resizing, reuse, rebuilds and atomicity."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import galm.data.prepare.build as build_module
import galm.data.prepare.integrity as integrity_module
from galm.data.collection import DomainCollection, open_collection
from galm.data.domain import AttributeDomain, class_split
from galm.data.prepare import (
    MANIFEST_FILE,
    PAD_VALUE,
    clip_box,
    open_prepared,
    prepare_dataset,
    prepare_domain,
    prepare_from_spec,
    read_manifest,
)
from galm.data.raw import RawDomain

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def make_table(folder: Path, n_classes: int = 4, per_class: int = 4, size: tuple[int, int] = (40, 30)) -> Path:
    """A CSV with PNG images in solid colours (class c: red level 40*c), attributes a (class parity), b."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = ["image,class,a,b"]
    for c in range(n_classes):
        for k in range(per_class):
            name = f"img/c{c}_{k}.png"
            Image.new("RGB", size, (40 * c, 10 * k, 200)).save(folder / name)
            b = "" if k == 0 else ("true" if k % 2 else "false")
            lines.append(f"{name},class{c},{c % 2},{b}")
    path = folder / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def raw_domain(paths: list[Path], boxes: np.ndarray | None = None) -> RawDomain:
    """A hand-built RawDomain over ``paths`` (two classes, the second one test)."""
    n = len(paths)
    class_index = (np.arange(n) >= n // 2).astype(np.int64)
    return RawDomain(
        name="hand", image_paths=list(paths), labels=(np.arange(n)[:, None] % 2).astype(np.float32),
        attribute_names=["odd"], class_index=class_index, class_names=["first", "second"],
        splits=class_split(class_index, [1], 0.0, seed=0), boxes=boxes,
    )


def quadrants(path: Path, size: int = 40) -> Path:
    """An image whose quadrants are red (top left), green (top right), blue (bottom left), white."""
    image = Image.new("RGB", (size, size))
    half = size // 2
    for (x, y), colour in zip([(0, 0), (half, 0), (0, half), (half, half)], [RED, GREEN, BLUE, WHITE]):
        image.paste(Image.new("RGB", (half, half), colour), (x, y))
    image.save(path)
    return path


def test_table_prepare_open_roundtrip(tmp_path: Path) -> None:
    table = make_table(tmp_path)
    out = tmp_path / "cache"
    report = prepare_dataset("table", table, out, resolution=16)
    assert not report.reused and report.n_images == 16 and report.reason == "new cache"
    start = time.perf_counter()
    domain = open_prepared(out)
    assert time.perf_counter() - start < 1.0
    assert isinstance(domain.images, np.memmap) and domain.images.shape == (16, 16, 16, 3)
    assert domain.attribute_names == ["a", "b"] and domain.class_names == [f"class{c}" for c in range(4)]
    assert np.isnan(domain.labels[0, 1]) and domain.labels[1, 1] == 1.0 and domain.labels[2, 1] == 0.0
    np.testing.assert_array_equal(domain.labels[:, 0], np.repeat(np.arange(4) % 2, 4))
    # Pixels survive decoding and resizing (solid colours).
    np.testing.assert_array_equal(domain.images[5, 8, 8], [40, 10, 200])
    test_classes = set(domain.class_index[domain.split("test")].tolist())
    assert test_classes and not test_classes & set(domain.class_index[domain.split("train")].tolist())
    manifest = read_manifest(out)
    assert manifest["identity"]["reader"] == "table" and manifest["n_images"] == 16
    assert manifest["identity"]["source_files"][0]["path"] == str(table)
    assert manifest["identity"]["options"] == {"resolution": 16, "resize": "center_crop", "crop_margin": 0.0}
    assert (out / "images.txt").read_text().splitlines()[0].endswith("img/c0_0.png")
    # Same bytes as AttributeDomain.save of the same domain would give.
    saved = AttributeDomain.load(domain.save(tmp_path / "saved"))
    np.testing.assert_array_equal(saved.images, domain.images)
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == sorted(
        p.name for p in out.iterdir() if p.name not in (MANIFEST_FILE, "images.txt"))


def test_resize_modes(tmp_path: Path) -> None:
    wide = tmp_path / "wide.png"
    image = Image.new("RGB", (60, 20), RED)
    image.paste(Image.new("RGB", (20, 20), GREEN), (20, 0))  # red | green | red
    image.save(wide)
    raw = raw_domain([wide, wide.with_name("wide2.png")])
    image.save(raw.image_paths[1])
    crop = open_prepared(prepare_domain(raw, tmp_path / "crop", resolution=12).out)
    assert crop.images.shape == (2, 12, 12, 3)
    assert (crop.images[0, 2:-2, 2:-2] == GREEN).all()  # the central square is the green block
    pad = open_prepared(prepare_domain(raw, tmp_path / "pad", resolution=12, resize="pad").out)
    assert pad.images.shape == (2, 12, 12, 3)
    assert (pad.images[0, :4] == PAD_VALUE).all() and (pad.images[0, -4:] == PAD_VALUE).all()
    assert (pad.images[0, 6, 0] == RED).all() and (pad.images[0, 6, 6] == GREEN).all()


def test_boxes_with_margin_clipping_and_drops(tmp_path: Path) -> None:
    path = quadrants(tmp_path / "q.png")
    paths = []
    for k in range(5):
        paths.append(tmp_path / f"q{k}.png")
        paths[-1].write_bytes(path.read_bytes())
    boxes = np.array([
        [0, 0, 20, 20],      # red quadrant
        [25, 5, 35, 15],     # inside green
        [-10, -10, 10, 10],  # partly outside: clipped to red
        [50, 50, 70, 70],    # fully outside: dropped
        [5, 25, 15, 35],     # inside blue
    ], dtype=np.float64)
    raw = raw_domain(paths, boxes)
    report = prepare_domain(raw, tmp_path / "boxes", resolution=8)
    assert report.n_images == 4 and len(report.dropped_boxes) == 1
    assert report.dropped_boxes[0]["path"] == str(paths[3])
    domain = open_prepared(tmp_path / "boxes")
    assert (domain.images[0] == RED).all() and (domain.images[1] == GREEN).all()
    assert (domain.images[2] == RED).all() and (domain.images[3] == BLUE).all()
    # Rows after the dropped one move up; the test class keeps its (remapped) images.
    np.testing.assert_array_equal(domain.labels[:, 0], [0, 1, 0, 0])
    assert domain.split("test").tolist() == [2, 3] and domain.split("train").tolist() == [0, 1]
    assert read_manifest(tmp_path / "boxes")["dropped_boxes"][0]["box"] == [50, 50, 70, 70]
    # A margin of half the box size per side: the green box grows to the whole green quadrant; the
    # box in the white quadrant grows past the image edge (clipped) and into the red quadrant.
    raw_margin = raw_domain(paths[:2], np.array([[25, 5, 35, 15], [22, 22, 38, 38]], np.float64))
    widened = open_prepared(prepare_domain(raw_margin, tmp_path / "margin", resolution=20, crop_margin=0.5).out)
    assert (widened.images[0] == GREEN).all()
    assert (widened.images[1, 0, 0] == RED).all() and (widened.images[1, -4:, -4:] == WHITE).all()


def test_clip_box() -> None:
    assert clip_box([10, 10, 20, 30], 0.5, 100, 100) == (5, 0, 25, 40)
    assert clip_box([-5, -5, 5, 5], 0.0, 10, 10) == (0, 0, 5, 5)
    assert clip_box([20, 20, 30, 30], 0.0, 10, 10) is None
    assert clip_box([5, 5, 5, 8], 0.0, 10, 10) is None
    assert clip_box([np.nan, 0, 5, 5], 0.0, 10, 10) is None


def test_decoding_failures_are_skipped_or_stop_a_strict_run(tmp_path: Path) -> None:
    table = make_table(tmp_path)
    broken = tmp_path / "img" / "c1_2.png"
    broken.write_bytes(b"not an image at all")
    out = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"cannot decode image .*c1_2\.png"):
        prepare_dataset("table", table, out, resolution=8, strict=True)
    assert not out.exists()
    report = prepare_dataset("table", table, out, resolution=8)
    assert report.n_images == 15 and report.skipped[0]["path"].endswith("c1_2.png")
    assert "skipped 1 images" in report.summary()
    domain = open_prepared(out)
    assert domain.n_images == 15
    assert sum(s.size for s in domain.splits.values()) == 15
    assert read_manifest(out)["skipped"][0]["error"].startswith("UnidentifiedImageError")
    assert domain.metadata["prepare"]["skipped_images"] == 1
    with pytest.raises(ValueError, match=r"c1_2\.png.*strict"):  # a reused cache is no excuse
        prepare_dataset("table", table, out, resolution=8, strict=True)


def test_rerun_reuses_and_changes_rebuild(tmp_path: Path) -> None:
    table = make_table(tmp_path)
    out = tmp_path / "cache"
    prepare_dataset("table", table, out, resolution=8)
    again = prepare_dataset("table", table, out, resolution=8)
    assert again.reused and again.n_images == 16 and "unchanged" in again.reason
    option = prepare_dataset("table", table, out, resolution=12)
    assert not option.reused and "resolution 8 -> 12" in option.reason
    assert open_prepared(out).resolution == 12
    image = tmp_path / "img" / "c0_1.png"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    touched = prepare_dataset("table", table, out, resolution=12)
    assert not touched.reused and "source image files changed" in touched.reason
    time.sleep(0.01)
    table.write_text(table.read_text().replace("img/c0_1.png,class0,0,true", "img/c0_1.png,class0,0,false"))
    edited = prepare_dataset("table", table, out, resolution=12)
    assert "source files changed: table.csv" in edited.reason and "labels" in edited.reason
    reader_option = prepare_dataset("table", table, out, resolution=12, options={"seed": 5})
    assert "reader options changed: seed None -> 5" in reader_option.reason
    forced = prepare_dataset("table", table, out, resolution=12, options={"seed": 5}, overwrite=True)
    assert not forced.reused and "overwrite" in forced.reason


def test_existing_foreign_directory_is_kept_unless_overwrite(tmp_path: Path) -> None:
    table = make_table(tmp_path, n_classes=2, per_class=2)
    out = tmp_path / "cache"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a prepared cache"):
        prepare_dataset("table", table, out, resolution=8)
    assert (out / "precious.txt").exists()
    prepare_dataset("table", table, out, resolution=8, overwrite=True)
    assert not (out / "precious.txt").exists() and open_prepared(out).n_images == 4


def test_interrupted_prepare_leaves_no_cache_and_keeps_an_older_one(tmp_path: Path, monkeypatch) -> None:
    table = make_table(tmp_path)
    out = tmp_path / "cache"
    real = build_module.decode_one
    calls = {"n": 0}

    def flaky(task):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(build_module, "decode_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("table", table, out, resolution=8)
    assert not out.exists() and list(tmp_path.glob(".cache*")) == []
    monkeypatch.setattr(build_module, "decode_one", real)
    prepare_dataset("table", table, out, resolution=8)
    before = read_manifest(out)
    calls["n"] = 0
    monkeypatch.setattr(build_module, "decode_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("table", table, out, resolution=16)
    assert read_manifest(out) == before and open_prepared(out).resolution == 8
    assert list(tmp_path.glob(".cache*")) == []


def test_two_workers_match_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(build_module, "MIN_IMAGES_PER_WORKER", 4)
    table = make_table(tmp_path, n_classes=2, per_class=6, size=(64, 48))
    (tmp_path / "img" / "c1_3.png").write_bytes(b"broken")
    one = prepare_dataset("table", table, tmp_path / "one", resolution=8, workers=1)
    two = prepare_dataset("table", table, tmp_path / "two", resolution=8, workers=2)
    assert one.n_images == two.n_images == 11 and two.skipped == one.skipped and two.workers == 2
    np.testing.assert_array_equal(open_prepared(tmp_path / "one").images, open_prepared(tmp_path / "two").images)


def test_prepare_from_spec(tmp_path: Path) -> None:
    make_table(tmp_path / "data", n_classes=3, per_class=3)
    spec = tmp_path / "spec.yaml"
    spec.write_text("format: table\nroot: data/table.csv\nout: caches/t\nresolution: 8\nresize: pad\n"
                    "options: {seed: 2, test_class_fraction: 0.34}\n")
    report = prepare_from_spec(spec)
    assert report.out == tmp_path / "caches" / "t" and report.n_images == 9
    assert read_manifest(report.out)["identity"]["reader_options"]["seed"] == 2
    assert open_prepared(report.out).resolution == 8
    spec.write_text("format: table\nroot: data/table.csv\nout: x\nresolutoin: 8\n")
    with pytest.raises(ValueError, match=r"unknown keys \['resolutoin'\]"):
        prepare_from_spec(spec)


def test_bad_options_and_unknown_format(tmp_path: Path) -> None:
    table = make_table(tmp_path, n_classes=2, per_class=2)
    with pytest.raises(ValueError, match="resize must be one of"):
        prepare_dataset("table", table, tmp_path / "c", resize="stretch")
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        prepare_dataset("nope", table, tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="not a prepared domain"):
        open_prepared(tmp_path)


def test_collection(tmp_path: Path) -> None:
    table = make_table(tmp_path, n_classes=2, per_class=2)
    first = prepare_dataset("table", table, tmp_path / "first", resolution=8).out
    same_name = prepare_dataset("table", table, tmp_path / "second", resolution=8).out
    with pytest.raises(ValueError, match="both hold a domain named 'table'"):
        open_collection([first, same_name])
    domain = open_prepared(first)
    other = AttributeDomain(**{**vars(domain), "name": "other", "attribute_names": ["x", "y"]})
    collection = DomainCollection([domain, other])
    assert collection.names == ["table", "other"] and collection["other"] is other and len(collection) == 2
    assert collection.attribute_names() == [("table", "a"), ("table", "b"), ("other", "x"), ("other", "y")]
    with pytest.raises(KeyError, match="no domain 'zzz'"):
        collection["zzz"]
    small = AttributeDomain(**{**vars(other), "name": "small", "images": np.zeros((4, 4, 4, 3), np.uint8)})
    with pytest.raises(ValueError, match="share one resolution"):
        DomainCollection([domain, small])
    assert open_collection([first]).resolution == 8


def test_large_jpeg_draft_and_exif_orientation(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    Image.new("RGB", (400, 300), (200, 40, 90)).save(big, quality=95)
    rotated = tmp_path / "rotated.jpg"
    image = Image.new("RGB", (40, 20), RED)
    image.paste(Image.new("RGB", (20, 20), BLUE), (20, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated 90 degrees clockwise, red on top
    image.save(rotated, exif=exif, quality=95)
    domain = open_prepared(prepare_domain(raw_domain([big, rotated]), tmp_path / "c", resolution=8, resize="pad").out)
    assert np.abs(domain.images[0, 2:6].astype(int) - (200, 40, 90)).max() <= 3
    top, bottom = domain.images[1, 1, 4].astype(int), domain.images[1, 6, 4].astype(int)
    assert np.abs(top - RED).max() < 40 and np.abs(bottom - BLUE).max() < 40
    assert (domain.images[1, :, 0] == PAD_VALUE).all()


def test_truncated_images_are_detected_and_rebuilt(tmp_path: Path) -> None:
    table = make_table(tmp_path)
    out = tmp_path / "cache"
    prepare_dataset("table", table, out, resolution=8)
    images = out / "images.npy"
    size = images.stat().st_size
    with open(images, "r+b") as handle:
        handle.truncate(size - 100)
    report = prepare_dataset("table", table, out, resolution=8)
    assert not report.reused and f"images.npy is {size - 100} bytes, the manifest records {size}" in report.reason
    assert "cache files damaged" in report.summary()
    assert open_prepared(out).images.shape == (16, 8, 8, 3)
    assert prepare_dataset("table", table, out, resolution=8).reused


def test_a_changed_byte_is_detected_by_the_checksum(tmp_path: Path) -> None:
    table = make_table(tmp_path)
    out = tmp_path / "cache"
    prepare_dataset("table", table, out, resolution=8)
    files = read_manifest(out)["files"]
    assert set(files) == {"images.npy", "labels.npy", "class_index.npy", "splits.npz", "domain.json", "images.txt"}
    assert files["images.npy"]["size"] == (out / "images.npy").stat().st_size and "sha256" in files["images.npy"]
    images = out / "images.npy"
    data = bytearray(images.read_bytes())
    data[len(data) // 2] ^= 0xFF
    images.write_bytes(bytes(data))
    report = prepare_dataset("table", table, out, resolution=8)
    assert not report.reused and "images.npy: contents differ from the manifest's sha256" in report.reason
    (out / "labels.npy").unlink()
    assert "labels.npy is missing" in prepare_dataset("table", table, out, resolution=8).reason


def test_large_files_get_a_sampled_checksum(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(integrity_module, "FULL_DIGEST_BYTES", 1024)
    table = make_table(tmp_path)
    out = tmp_path / "cache"
    prepare_dataset("table", table, out, resolution=16)
    record = read_manifest(out)["files"]["images.npy"]
    assert "sampled_sha256" in record and "sha256" not in record
    assert read_manifest(out)["files"]["labels.npy"].keys() == {"size", "sha256"}
    images = out / "images.npy"
    data = bytearray(images.read_bytes())
    data[-1] ^= 0xFF  # the last MiB is always covered
    images.write_bytes(bytes(data))
    assert "contents differ from the manifest's sampled_sha256" in prepare_dataset("table", table, out, resolution=16).reason
    ranges = integrity_module.sampled_ranges(10 * 2**30)
    assert ranges[0] == (0, 2**20) and ranges[-1] == (10 * 2**30 - 2**20, 2**20) and len(ranges) == 66


def test_old_manifest_is_accepted_after_a_header_size_check(tmp_path: Path) -> None:
    table = make_table(tmp_path)
    out = tmp_path / "cache"
    prepare_dataset("table", table, out, resolution=8)
    manifest = read_manifest(out)
    del manifest["files"]
    manifest["manifest_version"] = 1
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    reused = prepare_dataset("table", table, out, resolution=8)
    assert reused.reused and "manifest predates checksums" in reused.reason
    with open(out / "images.npy", "r+b") as handle:
        handle.truncate(1000)
    report = prepare_dataset("table", table, out, resolution=8)
    assert not report.reused and "images.npy is 1000 bytes, its header implies" in report.reason
    assert "files" in read_manifest(out)


def test_source_paths_spelled_differently_reuse_the_cache(tmp_path: Path, monkeypatch) -> None:
    from tests.test_readers_clothing import write_clothing

    monkeypatch.chdir(tmp_path)
    table = make_table(tmp_path / "data")
    out = tmp_path / "cache"
    prepare_dataset("table", "data/table.csv", out, resolution=8)
    for spelling in (str(table), "./data/table.csv", "data//table.csv", str(tmp_path / "data" / "." / "table.csv")):
        report = prepare_dataset("table", spelling, out, resolution=8)
        assert report.reused, (spelling, report.reason)
    dataset = write_clothing(tmp_path / "cl")
    clothing_out = tmp_path / "clothing-cache"
    prepare_dataset("clothing", "cl/ClothingAttributeDataset", clothing_out, resolution=8, options={"images_dir": "images"})
    for spelling, images_dir in ((f"{dataset}/", "./images/"), ("./cl/ClothingAttributeDataset", str(dataset / "images"))):
        report = prepare_dataset("clothing", spelling, clothing_out, resolution=8, options={"images_dir": images_dir})
        assert report.reused, (spelling, report.reason)
    shutil.copytree(dataset / "images", dataset / "copy")
    moved = prepare_dataset("clothing", dataset, clothing_out, resolution=8, options={"images_dir": "copy"})
    assert not moved.reused and "images_dir" in moved.reason  # another folder is not a respelling


WORKER_SCRIPT = '''
import os, sys, time
from pathlib import Path


def hold(folder):
    """Record this worker's pid, then work for a minute."""
    Path(folder, str(os.getpid())).write_text("")
    time.sleep(60)
    return os.getpid()


if __name__ == "__main__":
    from galm.data.prepare.workers import decoded

    with decoded([sys.argv[1]] * 2, 2, hold) as results:
        list(results)
'''


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 of the main process")
def test_decoding_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from galm.runs.lock import pid_alive

    script = tmp_path / "main.py"
    script.write_text(WORKER_SCRIPT)
    folder = tmp_path / "pids"
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    main = subprocess.Popen([sys.executable, str(script), str(folder)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [int(p.name) for p in folder.iterdir()]
        assert len(workers) == 2 and all(pid_alive(pid) for pid in workers)
    finally:
        main.send_signal(signal.SIGKILL)
        main.wait()
    deadline = time.monotonic() + 10
    while any(pid_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(pid_alive(pid) for pid in workers), "decoding workers outlived their killed parent"


def test_to_rgb_scales_16_bit_grey_and_converts_every_other_mode() -> None:
    from galm.data.prepare.decode import to_rgb

    grey = np.random.default_rng(4).integers(0, 256, (6, 7), dtype=np.uint8)
    expected = np.repeat(grey[:, :, None], 3, axis=2)
    wide = grey.astype(np.uint16) * 257
    for image in (Image.fromarray(grey), Image.fromarray(wide), Image.fromarray(wide.astype(np.int32)),
                  Image.fromarray(grey.astype(np.int32)), Image.fromarray(grey).convert("LA")):
        converted = to_rgb(image)
        assert converted.mode == "RGB" and np.array_equal(np.asarray(converted), expected), image.mode
    rgb = np.random.default_rng(5).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(to_rgb(Image.fromarray(np.dstack([rgb, np.full((6, 7), 9, np.uint8)])))), rgb)
    assert to_rgb(Image.fromarray(rgb).convert("CMYK")).mode == "RGB"
