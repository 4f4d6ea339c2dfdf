"""`galm predict` (a trained run or its ONNX export on new images) and `galm export` (ONNX, pt2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from galm.engine.device import resolve_device
from galm.predict.export import EXPORT_FORMATS, TOLERANCE, export_run
from galm.predict.images import collect_image_paths, table_image_paths
from galm.predict.output import OUTPUT_FORMATS, check_writable, output_format, write_predictions
from galm.predict.predictor import Predictor

# `galm predict` wrote the predictions of the images it could decode, but not of every image.
EXIT_SOME_FAILED = 3


def register(commands: Any) -> None:
    predict = commands.add_parser(
        "predict", help="attribute probabilities and decisions of a trained run for new images",
        description="Decode, resize and normalise images exactly as the run's training data were, and write "
        "one row per image: its path, then per attribute <name>_probability and <name>_decision (0/1). "
        "Images that cannot be decoded are listed on stderr and left out; the exit code is then "
        f"{EXIT_SOME_FAILED} (2 when nothing could be predicted or the input is bad).",
    )
    predict.add_argument("run", type=Path, metavar="RUN",
                         help="a run directory with model.pt (retrained search, transfer, galm train, experiment "
                         "cell), or an .onnx file written by galm export")
    predict.add_argument("images", nargs="*", type=Path, metavar="IMAGES",
                         help="image files and folders (searched recursively for common image extensions)")
    predict.add_argument("--table", type=Path, metavar="FILE",
                         help="a CSV/TSV (or Parquet) table of images, paths relative to the table's folder")
    predict.add_argument("--image-column", default="image", metavar="COL",
                         help="the column of --table holding image paths (default: image)")
    predict.add_argument("--out", type=Path, required=True, help="the predictions file to write")
    predict.add_argument("--format", choices=OUTPUT_FORMATS, default=None,
                         help="csv, jsonl or parquet (needs pyarrow); default: from the suffix of --out, else csv")
    predict.add_argument("--threshold", default="0.5",
                         help="decision threshold: a probability for every attribute, or 'calibrated' (per "
                         "attribute, chosen on the run's validation split for balanced accuracy; default: 0.5)")
    predict.add_argument("--device", default="cpu",
                         help="torch device for a run's model: cpu, cuda, cuda:N, auto (default: cpu)")
    predict.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    predict.add_argument("--workers", type=int, default=1,
                         help="processes decoding image files (default: 1, in this process)")
    predict.add_argument("--strict", action="store_true",
                         help="stop at the first image that cannot be decoded (no output is written)")

    export = commands.add_parser(
        "export", help="export a trained run's network to ONNX or torch.export (pt2)",
        description="The fixed network in eval mode, float32: input 'images' (N, 3, R, R), normalised as the "
        "file's metadata says (attribute names, resolution, resize mode, mean, std, thresholds, galm version), "
        f"and output 'logits' (N, m). The export is checked against PyTorch on the run's validation images "
        f"(onnxruntime for ONNX) and refused above {TOLERANCE:g} max abs logit difference.",
    )
    export.add_argument("run", type=Path, metavar="RUN", help="a run directory with model.pt")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True,
                        help="onnx (needs galm[export]: onnx, onnxscript, onnxruntime) or pt2 (torch.export)")
    export.add_argument("--out", type=Path, required=True, help="the file to write, e.g. model.onnx")


def _threshold(text: str) -> float | str:
    if text == "calibrated":
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--threshold: expected a probability in [0, 1] or 'calibrated', got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"--threshold: expected a probability in [0, 1], got {value}")
    return value


def command_predict(args: argparse.Namespace) -> int:
    if args.batch_size < 1 or args.workers < 1:
        raise ValueError("--batch-size and --workers must be at least 1")
    fmt = output_format(args.out, args.format)
    check_writable(fmt)
    threshold = _threshold(args.threshold)
    paths = collect_image_paths(args.images) if args.images else []
    if args.table is not None:
        paths += table_image_paths(args.table, args.image_column)
    if not paths:
        raise ValueError("no images given: name image files or folders, or --table FILE")
    if args.run.is_file() and args.run.suffix.lower() == ".onnx":
        predictor = Predictor.from_onnx(args.run)
    else:
        predictor = Predictor.from_run(args.run, resolve_device(args.device))
    predictor.thresholds(threshold)  # a run without calibrated thresholds fails before decoding
    p = predictor.pipeline
    print(f"galm predict: {len(paths)} images through {predictor.source} ({len(predictor.attribute_names)} "
          f"attributes, {p.resolution} px, {p.resize}; threshold {threshold})", file=sys.stderr)
    predictions = predictor.predict(paths, threshold, args.batch_size, args.workers, args.strict, show_progress=True)
    for name, reason in predictions.failures:
        print(f"galm predict: skipped {name}: {reason}", file=sys.stderr)
    if not len(predictions):
        raise ValueError(f"none of the {len(paths)} images could be decoded; nothing was written")
    write_predictions(predictions, args.out, fmt)
    print(f"galm predict: wrote {len(predictions)} predictions to {args.out}"
          + (f"; {len(predictions.failures)} images could not be decoded (listed above)"
             if predictions.failures else ""), file=sys.stderr)
    return EXIT_SOME_FAILED if predictions.failures else 0


def command_export(args: argparse.Namespace) -> int:
    report = export_run(args.run, args.format, args.out)
    print(f"galm export: wrote {report.path} ({report.format}); max abs logit difference against PyTorch "
          f"{report.max_abs_difference:.3g} on {report.checked_on} (limit {TOLERANCE:g})")
    return 0


COMMANDS = {"predict": command_predict, "export": command_export}
