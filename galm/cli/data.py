"""The ``galm data`` subcommands: ``prepare`` a dataset into a cache, ``info`` about a cache."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from galm.data.info import format_info

__all__ = ["parse_options", "register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``data`` command (with ``prepare`` and ``info``) to an argparse subparsers object."""
    data = subparsers.add_parser(
        "data", help="prepare datasets into cached domains and inspect them",
        description="Decode a dataset's images once into a memory-mapped cache that `--set "
        "data.source=DIR` opens instantly, and summarise prepared caches.",
    )
    commands = data.add_subparsers(dest="data_command", required=True, metavar="{prepare,info}")

    prepare = commands.add_parser(
        "prepare", help="read a dataset and write its prepared cache",
        description="FORMAT is a benchmark reader (awa, apy, sun, cub, celeba, clothing) with ROOT its "
        "folder, or 'table' with ROOT a CSV/Parquet file (one image path column, one 0/1 column per "
        "attribute). Alternatively --spec names a YAML file {format, root, out, resolution, options}. "
        "An up-to-date cache is reused; a stale one is rebuilt.",
    )
    prepare.add_argument("format", nargs="?", help="reader name, or 'table'")
    prepare.add_argument("root", nargs="?", type=Path, help="dataset folder, or the table file for 'table'")
    prepare.add_argument("--spec", type=Path, help="YAML spec instead of FORMAT ROOT --out")
    prepare.add_argument("--out", type=Path, help="cache directory to write")
    prepare.add_argument("--resolution", type=int, help="side of the square cached images (default 64)")
    prepare.add_argument("--resize", choices=("center_crop", "pad"),
                         help="centre-crop to a square, or pad to a square (default center_crop)")
    prepare.add_argument("--crop-margin", type=float, dest="crop_margin",
                         help="for datasets with boxes: fraction of the box size added on each side (default 0)")
    prepare.add_argument("--workers", type=int, help="decoding processes (default 1)")
    prepare.add_argument("--strict", action="store_true", default=None,
                         help="stop at the first image that fails to decode (default: skip and list it)")
    prepare.add_argument("--overwrite", action="store_true", default=None,
                         help="rebuild even an up-to-date cache, or replace a directory that is not one")
    prepare.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                         help="reader option, e.g. --option class_column=species --option domain=birds "
                         "(values read as YAML: numbers, true/false, null, [a, b]; repeatable)")

    info = commands.add_parser(
        "info", help="summarise a prepared cache: sizes, splits, positive rates, constant attributes"
    )
    info.add_argument("dir", type=Path, help="prepared cache directory")


def run(args: argparse.Namespace) -> int:
    """Run the ``galm data`` subcommand in ``args``; 0 on success."""
    if args.data_command == "prepare":
        return _prepare(args)
    if args.data_command == "info":
        return _info(args)
    raise ValueError(f"unknown data command {args.data_command!r}")


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict, values read as YAML scalars/lists ('none' also means None)."""
    import yaml

    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--option {item!r}: expected KEY=VALUE")
        if key in options:
            raise ValueError(f"--option {key} given twice")
        if text.strip().lower() == "none":
            options[key] = None
            continue
        try:
            options[key] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            options[key] = text
    return options


def _prepare(args: argparse.Namespace) -> int:
    from galm.data.prepare import prepare_dataset, prepare_from_spec

    settings = {k: getattr(args, k) for k in ("resolution", "resize", "crop_margin", "workers", "strict", "overwrite")}
    if args.spec is not None:
        if args.format or args.root or args.options:
            raise ValueError("give either --spec SPEC or FORMAT ROOT --out DIR [--option ...], not both")
        overrides: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
        if args.out is not None:
            overrides["out"] = str(Path(args.out).resolve())
        report = prepare_from_spec(args.spec, **overrides)
    else:
        if not args.format or args.root is None:
            raise ValueError("galm data prepare needs FORMAT ROOT --out DIR, or --spec SPEC")
        if args.out is None:
            raise ValueError("galm data prepare needs --out DIR (the cache directory to write)")
        report = prepare_dataset(
            args.format, args.root, args.out, options=parse_options(args.options),
            **{k: v for k, v in settings.items() if v is not None},
        )
    print(report.summary())
    print(f"use it with: --set data.source={report.out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from galm.data.prepare import open_prepared, read_manifest

    domain = open_prepared(args.dir)
    print(format_info(domain, read_manifest(args.dir), args.dir))
    return 0




COMMANDS = {"data": run}
