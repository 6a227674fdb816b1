"""Compare two folders written by tools/same_outputs.sh: every model file group by group
(xarray ``assert_identical``, ignoring attributes that record time), every JSON, CSV and text
output line by line (wall-time figures ignored).

Usage: ``python tools/compare_outputs.py BEFORE AFTER``; prints each difference and exits 1 if
there is one. Used for refactors that must not change any output (issue 14).
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path

import xarray as xr

TIME = re.compile(r"(created|fitted_at|saved_at|time|date|version|elapsed|seconds|duration)",
                  re.I)
SECONDS = re.compile(r'"[a-z_]*seconds": [0-9.]+')


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not TIME.search(k)}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _strip(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    attrs = {}
    for key, value in ds.attrs.items():
        if TIME.search(key):
            continue
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.dumps(_clean(json.loads(value)), sort_keys=True)
            except ValueError:
                pass
        attrs[key] = value
    ds.attrs = attrs
    return ds


def _compare_models(a: Path, b: Path) -> list[str]:
    with xr.open_datatree(a) as ta, xr.open_datatree(b) as tb:
        ga = {node.path: node for node in ta.subtree}
        gb = {node.path: node for node in tb.subtree}
        if set(ga) != set(gb):
            return [f"{a.name}: groups differ: {sorted(set(ga) ^ set(gb))}"]
        out = []
        for path in ga:
            try:
                xr.testing.assert_identical(_strip(ga[path].to_dataset()),
                                            _strip(gb[path].to_dataset()))
            except AssertionError as exc:
                out.append(f"{a.name} {path}: {str(exc)[:600]}")
        return out


def _compare_text(a: Path, b: Path) -> list[str]:
    ta = SECONDS.sub("", a.read_text().replace(str(a.parent), "DIR"))
    tb = SECONDS.sub("", b.read_text().replace(str(b.parent), "DIR"))
    if ta == tb:
        return []
    diff = difflib.unified_diff(ta.splitlines(), tb.splitlines(), lineterm="", n=0)
    return [f"{a.name}:\n  " + "\n  ".join(list(diff)[:12])]


def main(before: str, after: str) -> int:
    problems = []
    for a in sorted(Path(before).iterdir()):
        b = Path(after) / a.name
        if not b.exists():
            problems.append(f"{a.name}: missing in {after}")
        elif a.suffix == ".nc":
            problems += _compare_models(a, b)
        elif a.suffix in (".parquet", ".html"):
            if a.read_bytes() != b.read_bytes():
                print(f"note: {a.name} differs byte for byte (may hold a timestamp)")
        else:
            problems += _compare_text(a, b)
    print(*problems, sep="\n")
    print(f"differences: {len(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
