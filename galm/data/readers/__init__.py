"""Readers for the public attribute benchmarks' shipped layouts; each returns a RawDomain.

``READERS`` maps a format name to its reader (:func:`galm.data.prepare.get_reader` looks one up,
'table' included). Every reader takes the dataset root as its first argument and keyword options
after it, parses the annotation files, checks that the image folder and the listed image files
exist (it never decodes images: ``prepare`` does), and raises :class:`DatasetFormatError` (a
ValueError) naming the file, line or field when its input is wrong.

The xlsa17 feature files are not an image format and are not in ``READERS``: use
:func:`read_xlsa17_features` (a :class:`~galm.data.feature_set.FeatureSet`) and
:func:`xlsa17_class_split`.

What the readers share: ``format_error`` (the error and builders naming file, line or field),
``dataset_files`` (root, annotation files, image folders, listed images), ``text_tables``
(whitespace-separated text files), ``mat_files`` (MATLAB v5 files), ``class_names`` (matching
class names across sources) and ``splits`` (choosing the unseen test classes).
"""

from __future__ import annotations

from typing import Callable

from galm.data.raw import RawDomain
from galm.data.readers.apy import read_apy
from galm.data.readers.awa import read_awa
from galm.data.readers.celeba import read_celeba
from galm.data.readers.clothing import read_clothing
from galm.data.readers.cub import read_cub
from galm.data.readers.format_error import DatasetFormatError
from galm.data.readers.sun import read_sun
from galm.data.readers.xlsa17 import (
    AttSplits,
    read_att_splits,
    read_test_classes,
    read_xlsa17_features,
    xlsa17_class_split,
)

__all__ = [
    "READERS",
    "AttSplits",
    "DatasetFormatError",
    "read_apy",
    "read_att_splits",
    "read_awa",
    "read_celeba",
    "read_clothing",
    "read_cub",
    "read_sun",
    "read_test_classes",
    "read_xlsa17_features",
    "xlsa17_class_split",
]

READERS: dict[str, Callable[..., RawDomain]] = {
    "awa": read_awa,
    "apy": read_apy,
    "sun": read_sun,
    "cub": read_cub,
    "celeba": read_celeba,
    "clothing": read_clothing,
}

