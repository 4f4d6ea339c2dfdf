"""A custom attribute dataset described by one table: an image path and one 0/1 column per attribute.

The table is a UTF-8 CSV file (``.csv``, or ``.tsv`` for tab-separated) or, where ``pyarrow`` is
installed, a Parquet file (:mod:`galm.data.table_file` reads it). One row per image::

    image,class,domain,striped,furry,has_wings,metallic
    photos/zebra_01.jpg,zebra,animals,1,0,0,0
    photos/zebra_02.jpg,zebra,animals,yes,no,no,
    photos/tiger_01.jpg,tiger,animals,true,true,false,false
    photos/tiger_02.jpg,tiger,animals,1,1,0,0
    photos/eagle_01.jpg,eagle,animals,0,0,1,0
    photos/eagle_02.jpg,eagle,animals,0,,1,0
    photos/owl_01.jpg,owl,animals,1,0,1,0
    photos/owl_02.jpg,owl,animals,0,0,yes,0

Columns:

- ``image`` (required; ``image_column=`` renames it): the image file, relative to the folder
  holding the table. Each image appears once. Paths that leave that folder (absolute paths,
  ``../`` escapes, symlinks whose target lies outside) are refused with an error naming the
  table, line and path, so a table cannot point the reader at arbitrary files; pass
  ``allow_outside_paths=True`` (``--option allow_outside_paths=true``) to accept them.
- ``class`` (optional; ``class_column=``): the object class. Test classes are unseen in training:
  without a split column, ``round(test_class_fraction * classes)`` classes (at least one) are held
  out for test, chosen with ``seed``, and ``val_fraction`` of every other class's images form val.
  Without a class column, images are split at random into two pseudo-classes ``train_pool`` and
  ``test_pool``; the metadata then records that the test split is *not* class-disjoint.
- ``domain`` (optional; ``domain_column=``): when the table holds several domains, pick one with
  ``domain=`` or read them all with :func:`read_table_domains`.
- ``split`` (optional; ``split_column=``): ``train``, ``val`` or ``test`` per image, replacing the
  seeded split; classes of test images must not appear in train or val.
- every other column (or those named by ``attribute_columns=``) is an attribute: ``1``/``0``,
  ``true``/``false``, ``yes``/``no`` (any case), blank for unknown (NaN, left out of training and
  scoring). Anything else is an error naming the file, line (1-based, the header is line 1) and column.

If every class's known labels agree across its images (and some class has several images), the
labels are class-level (``label_level='class'``) and the per-class attribute matrix is kept.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from galm.data.domain import SPLIT_NAMES, choose_test_classes, class_split
from galm.data.raw import RawDomain
from galm.data.readers.format_error import DatasetFormatError
from galm.data.table_file import TableFile, read_table_file

__all__ = ["TABLE_READER_VERSION", "read_table", "read_table_domains"]

# Bump when a table reads into a different RawDomain (prepared caches then rebuild).
TABLE_READER_VERSION = 1

TRUE_VALUES = frozenset({"1", "1.0", "true", "yes"})
FALSE_VALUES = frozenset({"0", "0.0", "false", "no"})
TRAIN_POOL, TEST_POOL = "train_pool", "test_pool"
_SHOW_MISSING = 5


class _Auto:
    """Marker for 'use the conventional column when the table has it'."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()


def read_table(
    path: str | Path,
    *,
    image_column: str = "image",
    class_column: str | None = AUTO,
    domain_column: str | None = AUTO,
    split_column: str | None = AUTO,
    attribute_columns: Sequence[str] | None = None,
    domain: str | None = None,
    val_fraction: float = 0.2,
    test_class_fraction: float = 0.25,
    seed: int = 0,
    allow_outside_paths: bool = False,
) -> RawDomain:
    """Read one attribute domain from a CSV/Parquet table (format in the module docstring).

    ``class_column``, ``domain_column`` and ``split_column`` default to the columns ``class``,
    ``domain`` and ``split`` when present; pass a name to require another column, or None to
    ignore them. With several domains in the table, ``domain`` selects one. Image paths must stay
    inside the table's folder (a DatasetFormatError names the line otherwise) unless
    ``allow_outside_paths`` is true.
    """
    table = read_table_file(Path(path))
    columns = _resolve_columns(table, image_column, class_column, domain_column, split_column)
    domain_col = columns["domain"]
    if domain_col is None:
        if domain is not None:
            raise ValueError(f"{table.path}: domain={domain!r} given but the table has no domain column")
        return _build_domain(table, list(range(len(table.rows))), table.path.stem, columns,
                             attribute_columns, val_fraction, test_class_fraction, seed, allow_outside_paths)
    groups = _domain_groups(table, domain_col)
    if domain is None:
        if len(groups) > 1:
            raise ValueError(
                f"{table.path} holds {len(groups)} domains {sorted(groups)} in column {domain_col!r}; "
                "choose one with domain=NAME (--option domain=NAME) or read all with read_table_domains"
            )
        domain = next(iter(groups))
    if domain not in groups:
        raise ValueError(f"{table.path}: no rows of domain {domain!r}; the table holds {sorted(groups)}")
    return _build_domain(table, groups[domain], domain, columns, attribute_columns,
                         val_fraction, test_class_fraction, seed, allow_outside_paths)


def read_table_domains(
    path: str | Path,
    *,
    image_column: str = "image",
    class_column: str | None = AUTO,
    domain_column: str | None = AUTO,
    split_column: str | None = AUTO,
    attribute_columns: Sequence[str] | None = None,
    val_fraction: float = 0.2,
    test_class_fraction: float = 0.25,
    seed: int = 0,
    allow_outside_paths: bool = False,
) -> dict[str, RawDomain]:
    """Every domain of a table, by name (one entry named after the file when it has no domain column)."""
    table = read_table_file(Path(path))
    columns = _resolve_columns(table, image_column, class_column, domain_column, split_column)
    if columns["domain"] is None:
        groups = {table.path.stem: list(range(len(table.rows)))}
    else:
        groups = _domain_groups(table, columns["domain"])
    return {
        name: _build_domain(table, rows, name, columns, attribute_columns, val_fraction,
                            test_class_fraction, seed, allow_outside_paths)
        for name, rows in groups.items()
    }


# --- columns ----------------------------------------------------------------------------------


def _resolve_columns(
    table: TableFile, image: str, klass: str | None, domain: str | None, split: str | None
) -> dict[str, str | None]:
    """Which column plays which role; AUTO picks the conventional name when present."""
    if image not in table.columns:
        raise ValueError(f"{table.path}: no image column {image!r}; columns are {table.columns}")
    roles: dict[str, str | None] = {"image": image}
    for role, given in (("class", klass), ("domain", domain), ("split", split)):
        if given is AUTO:
            roles[role] = role if role in table.columns else None
        elif given is None:
            roles[role] = None
        elif given not in table.columns:
            raise ValueError(f"{table.path}: no {role} column {given!r}; columns are {table.columns}")
        else:
            roles[role] = given
    return roles


def _domain_groups(table: TableFile, column: str) -> dict[str, list[int]]:
    """Row numbers of each domain, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(table.rows):
        name = _text(row[column])
        if not name:
            raise ValueError(f"{table.where(i)}, column {column!r}: empty domain name")
        groups.setdefault(name, []).append(i)
    return groups


def _text(value: Any) -> str:
    """A cell as stripped text ('' for missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _parse_label(value: Any, table: TableFile, i: int, column: str) -> float:
    """1/0, true/false, yes/no (any case) or blank for unknown."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        if value in (0, 1):
            return float(value)
    text = _text(value).lower()
    if not text:
        return math.nan
    if text in TRUE_VALUES:
        return 1.0
    if text in FALSE_VALUES:
        return 0.0
    raise ValueError(
        f"{table.where(i)}, column {column!r}: {str(value)!r} is not an attribute value "
        "(use 1/0, true/false, yes/no, or leave blank for unknown)"
    )


# --- building the domain ----------------------------------------------------------------------


def _build_domain(
    table: TableFile,
    rows: list[int],
    name: str,
    columns: dict[str, str | None],
    attribute_columns: Sequence[str] | None,
    val_fraction: float,
    test_class_fraction: float,
    seed: int,
    allow_outside_paths: bool,
) -> RawDomain:
    """The RawDomain of the given table rows."""
    if not rows:
        raise ValueError(f"{table.path}: no image rows")
    roles = {c for c in columns.values() if c is not None}
    if attribute_columns is None:
        attributes = [c for c in table.columns if c not in roles]
    else:
        attributes = list(attribute_columns)
        unknown = [c for c in attributes if c not in table.columns]
        if unknown:
            raise ValueError(f"{table.path}: attribute columns {unknown} not found; columns are {table.columns}")
        clash = [c for c in attributes if c in roles]
        if clash:
            raise ValueError(f"{table.path}: columns {clash} cannot be both attributes and image/class/domain/split")
    if not attributes:
        raise ValueError(f"{table.path}: no attribute columns")

    image_paths = _image_paths(table, rows, columns["image"], allow_outside_paths)  # type: ignore[arg-type]
    labels = np.empty((len(rows), len(attributes)), dtype=np.float32)
    for r, i in enumerate(rows):
        row = table.rows[i]
        for a, column in enumerate(attributes):
            labels[r, a] = _parse_label(row[column], table, i, column)

    split_values = _split_values(table, rows, columns["split"])
    metadata: dict[str, Any] = {"table": str(table.path), "class_disjoint_test": True}
    if columns["class"] is not None:
        class_names, class_index = _classes(table, rows, columns["class"])
        if split_values is None:
            if len(class_names) < 2:
                raise ValueError(
                    f"{table.path}: column {columns['class']!r} holds one class ({class_names[0]!r}) but unseen "
                    "test classes need at least 2; add classes, or split the images at random with "
                    "--option class_column=none --option attribute_columns=[...]"
                )
            test_classes = choose_test_classes(len(class_names), test_class_fraction, seed)
            splits = class_split(class_index, test_classes, val_fraction, seed)
        else:
            splits = _given_splits(split_values, class_index, class_names, table)
    else:
        class_names = [TRAIN_POOL, TEST_POOL]
        if split_values is None:
            class_index = _random_pools(len(rows), test_class_fraction, seed)
            splits = class_split(class_index, [1], val_fraction, seed)
        else:
            class_index = np.array([1 if s == "test" else 0 for s in split_values], dtype=np.int64)
            splits = _given_splits(split_values, class_index, class_names, table)
        metadata["class_disjoint_test"] = False
        metadata["note"] = (
            "the table has no class column: images were split at random into the pseudo-classes "
            "train_pool and test_pool, so the test split is not class-disjoint"
        )
    label_level, class_attributes = "image", None
    if columns["class"] is not None:
        label_level, class_attributes = _label_level(labels, class_index, len(class_names))
    return RawDomain(
        name=name,
        image_paths=image_paths,
        labels=labels,
        attribute_names=attributes,
        class_index=class_index,
        class_names=class_names,
        splits=splits,
        label_level=label_level,
        class_attributes=class_attributes,
        source_files=[table.path],
        metadata=metadata,
    )


def _image_paths(table: TableFile, rows: list[int], column: str, allow_outside: bool) -> list[Path]:
    """Resolved image paths; errors for blanks, duplicates, paths leaving the folder and missing files."""
    folder = table.path.parent
    inside = folder.resolve()
    paths: list[Path] = []
    first_row: dict[Path, int] = {}
    for i in rows:
        text = _text(table.rows[i][column])
        if not text:
            raise ValueError(f"{table.where(i)}, column {column!r}: empty image path")
        path = Path(text)
        if not allow_outside:
            _check_inside(path, inside, f"{table.where(i)}, column {column!r}", text, folder)
        path = path if path.is_absolute() else folder / path
        if path in first_row:
            raise ValueError(
                f"{table.where(i)}, column {column!r}: image {text!r} already listed at "
                f"{table.where(first_row[path]).split(', ')[-1]}"
            )
        first_row[path] = i
        paths.append(path)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:_SHOW_MISSING])
        more = f" and {len(missing) - _SHOW_MISSING} more" if len(missing) > _SHOW_MISSING else ""
        raise FileNotFoundError(
            f"{table.path}: {len(missing)} of {len(paths)} image files are missing "
            f"(relative paths are read from {folder}): {shown}{more}"
        )
    return paths


def _check_inside(path: Path, inside: Path, where: str, text: str, folder: Path) -> None:
    """A DatasetFormatError unless ``path`` is relative and resolves (symlinks followed) inside ``inside``."""
    hint = "pass allow_outside_paths=true (--option allow_outside_paths=true) to accept it"
    if path.is_absolute():
        raise DatasetFormatError(
            f"{where}: absolute image path {text!r}; image paths must be relative to the table's folder {folder} ({hint})"
        )
    resolved = (inside / path).resolve()
    if not resolved.is_relative_to(inside):
        raise DatasetFormatError(
            f"{where}: image path {text!r} leads outside the table's folder {folder} (resolves to {resolved}; {hint})"
        )


def _split_values(table: TableFile, rows: list[int], column: str | None) -> list[str] | None:
    if column is None:
        return None
    values = []
    for i in rows:
        value = _text(table.rows[i][column]).lower()
        if value not in SPLIT_NAMES:
            raise ValueError(
                f"{table.where(i)}, column {column!r}: split {_text(table.rows[i][column])!r} "
                f"is not one of {list(SPLIT_NAMES)}"
            )
        values.append(value)
    return values


def _classes(table: TableFile, rows: list[int], column: str) -> tuple[list[str], np.ndarray]:
    """Sorted class names and each row's class id."""
    texts = []
    for i in rows:
        text = _text(table.rows[i][column])
        if not text:
            raise ValueError(f"{table.where(i)}, column {column!r}: empty class name")
        texts.append(text)
    names = sorted(set(texts))
    position = {n: k for k, n in enumerate(names)}
    return names, np.array([position[t] for t in texts], dtype=np.int64)


def _random_pools(n: int, test_fraction: float, seed: int) -> np.ndarray:
    """Pseudo-class ids: a seeded round(test_fraction * n) images (at least one) in test_pool."""
    if n < 2:
        raise ValueError("a table without a class column needs at least two images")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_class_fraction must lie in (0, 1), got {test_fraction}")
    n_test = min(max(1, int(round(test_fraction * n))), n - 1)
    pools = np.zeros(n, dtype=np.int64)
    pools[np.random.default_rng(seed).choice(n, size=n_test, replace=False)] = 1
    return pools


def _given_splits(
    values: list[str], class_index: np.ndarray, class_names: list[str], table: TableFile
) -> dict[str, np.ndarray]:
    """Splits from a split column, checking that test classes are unseen in train and val."""
    array = np.array(values)
    splits = {s: np.flatnonzero(array == s).astype(np.int64) for s in SPLIT_NAMES}
    test_classes = set(class_index[splits["test"]].tolist())
    seen = set(class_index[splits["train"]].tolist()) | set(class_index[splits["val"]].tolist())
    leaked = sorted(class_names[c] for c in test_classes & seen)
    if leaked:
        raise ValueError(
            f"{table.path}: classes {leaked[:10]} have images in test and in train/val; "
            "test classes must be unseen"
        )
    return splits


def _label_level(labels: np.ndarray, class_index: np.ndarray, n_classes: int) -> tuple[str, np.ndarray | None]:
    """('class', per-class labels) when every class's known labels agree, else ('image', None)."""
    counts = np.bincount(class_index, minlength=n_classes)
    if counts.max(initial=0) < 2:
        return "image", None
    class_attributes = np.full((n_classes, labels.shape[1]), np.nan, dtype=np.float32)
    for c in range(n_classes):
        block = labels[class_index == c]
        if block.size == 0:
            continue
        ones = (block == 1.0).any(axis=0)
        zeros = (block == 0.0).any(axis=0)
        if (ones & zeros).any():
            return "image", None
        class_attributes[c] = np.where(ones, 1.0, np.where(zeros, 0.0, np.nan))
    return "class", class_attributes
