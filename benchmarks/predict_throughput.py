"""Prediction throughput: images per second of ``galm predict`` on the CPU (decoding + forward pass),
at 64 and 224 pixels, through PyTorch (the run's model.pt) and onnxruntime (its ONNX export), in one run.

    python benchmarks/predict_throughput.py [--images 512] [--resolutions 64 224] [--source-size 640]
        [--attributes 12] [--batch-size 64] [--workers 1] [--threads 0]

For each resolution a run directory is made with a fixed network of one seeded random head per
attribute (throughput does not depend on the weights, so nothing is trained), exported to ONNX with
``galm export``'s own function, and ``--images`` photo-like JPEGs of ``--source-size`` pixels
(4:3) are predicted as the command predicts them (``Predictor.predict`` + the CSV writer). One
untimed warm-up batch comes first for each backend. Printed per resolution and backend: seconds,
images/second, and for comparison decoding alone (``--workers`` processes) and the forward pass
alone on already decoded pixels.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from galm.config.schema import GalmConfig, SpaceConfig
from galm.config.typed import to_mapping
from galm.engine.batches import PIXEL_CENTER, PIXEL_SCALE
from galm.nn.network import FixedNetwork
from galm.predict import Predictor
from galm.predict.export import export_run
from galm.predict.images import decode_inputs
from galm.predict.output import write_predictions
from galm.runs.architectures import architectures_record
from galm.runs.atomic import write_json
from galm.runs.directory import RunDirectory
from galm.runs.model_file import save_model
from galm.runs.preprocessing import PixelPipeline, write_pipeline
from galm.space import SearchSpace


def write_jpegs(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` photo-like JPEGs (colour gradients plus noise) of size x (3/4 size) pixels."""
    rng = np.random.default_rng(seed)
    height = size * 3 // 4
    ys, xs = np.mgrid[0:height, 0:size].astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        a, b, c = rng.random(3)
        image = np.stack([xs / size * 255 * a, ys / height * 255 * b, (xs + ys) / (size + height) * 255 * c], -1)
        image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        path = folder / f"photo{i:05d}.jpg"
        Image.fromarray(image).save(path, quality=90)
        paths.append(path)
    return paths


def make_run(path: Path, resolution: int, attributes: int, seed: int = 0) -> Path:
    """A run directory holding an untrained fixed network of seeded random heads."""
    config = GalmConfig(space=SpaceConfig(resolution=resolution))
    run = RunDirectory.create(path, to_mapping(config))
    names = [f"attribute{a:02d}" for a in range(attributes)]
    rng = random.Random(seed)
    space = SearchSpace(config.space)
    archs = {name: space.sample(rng) for name in names}
    torch.manual_seed(seed)
    net = FixedNetwork([archs[n] for n in names], config.space)
    write_json(run.architectures_path, architectures_record(archs))
    write_pipeline(run.preprocessing_path, PixelPipeline(resolution, "center_crop", (PIXEL_CENTER,) * 3,
                                                          (PIXEL_SCALE,) * 3))
    save_model(run.model_path, net.eval(), names)
    return run.path


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--source-size", type=int, default=640, help="width of the generated JPEGs (4:3)")
    parser.add_argument("--attributes", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="decoding processes (galm predict --workers)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.images} JPEGs of "
          f"{args.source_size}x{args.source_size * 3 // 4}; {args.attributes} attributes; batch {args.batch_size}; "
          f"{args.workers} decoding worker(s)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="galm-predict-bench-") as tmp:
        root = Path(tmp)
        paths = write_jpegs(root / "images", args.images, args.source_size)
        for resolution in args.resolutions:
            run = make_run(root / f"run{resolution}", resolution, args.attributes)
            onnx_path = root / f"model{resolution}.onnx"
            export_run(run, "onnx", onnx_path)
            predictors = {"pytorch": Predictor.from_run(run), "onnxruntime": Predictor.from_onnx(onnx_path)}
            pipeline = predictors["pytorch"].pipeline
            decode_s, decoded = timed(lambda: [d.pixels for d in decode_inputs(paths, pipeline, args.workers)])
            pixels = np.stack(decoded)
            rows.append((resolution, "decode only", decode_s))
            for backend, predictor in predictors.items():
                predictor.predict(paths[: min(len(paths), args.batch_size)], batch_size=args.batch_size)  # warm-up
                forward_s, _ = timed(lambda: [predictor.backend.logits(pixels[i:i + args.batch_size])
                                              for i in range(0, len(pixels), args.batch_size)])
                rows.append((resolution, f"{backend} forward only", forward_s))
                out = root / f"predictions-{resolution}-{backend}.csv"
                total_s, result = timed(lambda: write_predictions(
                    predictor.predict(paths, batch_size=args.batch_size, workers=args.workers), out, "csv"))
                rows.append((resolution, f"galm predict, {backend}", total_s))
    print()
    print("| resolution | what | seconds | images/s |")
    print("|---:|---|---:|---:|")
    for resolution, what, seconds in rows:
        print(f"| {resolution} | {what} | {seconds:.2f} | {args.images / seconds:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
