"""Reading MATLAB v5 ``.mat`` annotation files (SUN, xlsa17): variables, string cells, numeric arrays.

Errors name the file and the key at fault; scipy is imported only when a file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from galm.data.readers.dataset_files import require_file
from galm.data.readers.format_error import DatasetFormatError, field_error


def load_mat(path: Path, what: str) -> dict[str, Any]:
    """A MATLAB v5 file's variables; an error naming the file when missing or unreadable."""
    require_file(path, what)
    import scipy.io

    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DatasetFormatError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save it as a v5 .mat") from None
    except Exception as error:  # scipy raises several types for corrupt files
        raise DatasetFormatError(f"cannot read {what} {path}: {error}") from None


def mat_key(mat: dict[str, Any], key: str, path: Path) -> Any:
    """``mat[key]``; an error naming the file, the key and the keys present otherwise."""
    if key not in mat:
        present = sorted(k for k in mat if not k.startswith("__"))
        raise field_error(path, key, f"key is missing; the file holds {present}")
    return mat[key]


def mat_strings(value: Any, path: Path, key: str) -> list[str]:
    """A MATLAB cell array of strings (object arrays nested at any depth) as a flat list of str."""
    out: list[str] = []

    def visit(item: Any) -> None:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, bytes):
            out.append(item.decode("utf-8", "replace"))
        elif isinstance(item, np.ndarray):
            if item.dtype.kind in "US":
                if item.size == 0:
                    out.append("")
                elif item.ndim <= 1 or item.size == 1:
                    out.extend(str(s) for s in item.ravel())
                else:  # a char matrix: one string per row
                    out.extend("".join(str(c) for c in row).rstrip() for row in item.reshape(item.shape[0], -1))
            elif item.dtype == object:
                for element in item.ravel(order="F"):
                    visit(element)
            elif item.size == 0:
                out.append("")
            else:
                raise field_error(path, key, f"expected a cell array of strings, found a {item.dtype} array")
        else:
            raise field_error(path, key, f"expected a cell array of strings, found {type(item).__name__}")

    visit(value)
    return out


def mat_numeric(value: Any, path: Path, key: str) -> np.ndarray:
    """A numeric .mat variable as float64; an error naming the key otherwise."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise field_error(path, key, f"expected a numeric array, found dtype {array.dtype}")
    return array.astype(np.float64)
