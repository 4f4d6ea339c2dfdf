"""Choosing a reader's unseen test classes: from a split file the user names, else seeded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from galm.data.domain import choose_test_classes
from galm.data.readers.dataset_files import resolve
from galm.data.readers.format_error import DatasetFormatError
from galm.data.readers.xlsa17 import read_test_classes


def listed_or_seeded_test_classes(
    root: Path,
    class_names: Sequence[str],
    split_file: str | os.PathLike[str] | None,
    test_fraction: float,
    seed: int,
    metadata: dict[str, Any],
    source_files: list[Path],
    where: Path,
) -> list[int]:
    """Test class ids from `split_file` (a list of names or an xlsa17 att_splits.mat), else a seeded
    choice of `test_fraction` of the classes; records the choice in `metadata` and `source_files`."""
    if split_file is not None:
        path = resolve(root, split_file)
        assert path is not None
        metadata["split_source"] = str(path)
        source_files.append(path)
        return read_test_classes(path, class_names)
    if len(class_names) < 2:
        raise DatasetFormatError(f"{where}: the images hold a single class; a class split needs two")
    metadata.update(split_source="seeded class choice", test_fraction=test_fraction)
    return choose_test_classes(len(class_names), test_fraction, seed)
