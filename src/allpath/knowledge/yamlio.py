"""One YAML reader for every data file allpath ships (knowledge packs, code tables, companion texts).

PyYAML's default `safe_load` parses in pure Python; its `CSafeLoader` does the same safe subset in
libyaml, about ten times faster (loading the default packs was most of the test suite's collection
time). Both build the same plain Python objects from the same files; the C one is used whenever
PyYAML was built with libyaml, which every wheel on PyPI is.
"""

from __future__ import annotations

from typing import Any

import yaml

try:
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # a PyYAML built without libyaml
    _Loader = yaml.SafeLoader


def safe_load(text: str) -> Any:
    """The YAML document in `text` as plain Python objects (no tags beyond YAML's own)."""
    return yaml.load(text, Loader=_Loader)
