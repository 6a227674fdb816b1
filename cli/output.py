"""What commands print and write: tables, JSON, result summaries and output files.

Imports only the standard library at the top (numpy, pandas and rich load inside the functions),
so every command module can import it without slowing ``journeymodel --help``.
"""

import json
import math
import sys
from pathlib import Path
from typing import Any


def console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def print_json(payload: Any) -> None:
    """Print ``payload`` as strict JSON (RFC 8259): never ``NaN``, ``Infinity`` or ``-Infinity``.

    A non-finite number means "not available" (an undefined rate, an interval that cannot be
    computed, a value nobody recorded), so it is printed as ``null``; numpy scalars and arrays,
    tuples and paths become plain JSON. The text is then written with ``allow_nan=False``, so a
    non-finite number that slipped through would fail loudly rather than print invalid JSON.
    """
    text = json.dumps(strict_json(payload), indent=2, allow_nan=False, default=_json_default)
    sys.stdout.write(text + "\n")


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None`` and numpy values made plain
    (dicts, lists and tuples walked; other objects through :func:`_json_default`)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int)):  # bool is an int
        return obj
    if isinstance(obj, dict):
        return {_json_key(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return strict_json(_json_default(obj))


def _json_key(key: Any) -> Any:
    """Dict keys as JSON allows them: numpy scalars made plain, non-finite floats as text."""
    if hasattr(key, "item") and not isinstance(key, (str, int, float)):
        key = key.item()
    if isinstance(key, float) and not math.isfinite(key):
        return str(key)
    return key


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def print_frame(title: str, frame, *, max_rows: int = 40, kinds: dict | None = None,
                width: int | None = None) -> None:
    """Print a DataFrame (or a :class:`journeymodel.io.table.Table`) as rich tables that fit
    the terminal, names never cut.

    Numbers are formatted by their column's kind (``kinds``: column -> kind, see
    :mod:`journeymodel.io.formatting`; money and durations get units, nothing prints in scientific
    notation); columns whose every cell is missing are left out. Text columns (names) keep their
    whole width and never wrap; other columns wrap at spaces, headers at spaces and
    underscores. When even that is too wide for the terminal, the columns are printed in
    several tables, each repeating the first (name) column.
    """
    out = console()
    layout = _layout(frame.head(max_rows), kinds or {}, width or out.width)
    for i, (columns, widths) in enumerate(layout.groups):
        out.print(_rich_table(title if i == 0 else f"{title} (continued)", layout, columns,
                              widths))
    if len(frame) > max_rows:
        out.print(f"... {len(frame) - max_rows} more rows (use --json or -o for all)")


#: Column names formatted as money unless a kind says otherwise.
_MONEY_NAMES = ("value", "revenue", "total_value")


class _Layout:
    """Formatted cells of a frame and how its columns are split and sized for a width."""

    def __init__(self, headers, cells, names, numeric, *, has_index: bool):
        self.headers, self.cells, self.names, self.numeric = headers, cells, names, numeric
        self.has_index = has_index
        self.groups: list[tuple[list[int], list[int]]] = []


def _layout(frame, kinds: dict, total_width: int) -> _Layout:
    from journeymodel.io.formatting import MISSING, format_column
    from journeymodel.io.table import Table

    headers, cells, names, numeric = [], [], [], []
    if isinstance(frame, Table):
        index_name, has_index = frame.index_name, frame.index is not None
    else:
        index_name = frame.index.name
        has_index = index_name is not None or not _is_range_index(frame)
    if has_index:
        headers.append(str(index_name or ""))
        cells.append([str(v) for v in frame.index])
        names.append(True)
        numeric.append(False)
    for col in frame.columns:
        kind = kinds.get(col) or _default_kind(col, frame[col])
        text = format_column(frame[col].tolist(), kind)
        if len(frame) and all(t == MISSING for t in text):
            continue  # a column of nothing but "-" says nothing
        is_number = frame[col].dtype.kind in "iuf" or kind in (
            "money", "duration", "periods", "count", "probability", "number")
        headers.append(str(col))
        cells.append(text)
        names.append(not is_number and kind != "text")
        numeric.append(is_number)
    layout = _Layout(headers, cells, names, numeric, has_index=has_index)
    layout.groups = _fit(layout, total_width)
    return layout


def _default_kind(col, series) -> str | None:
    name = str(col).lower()
    if series.dtype.kind == "f" and (name in _MONEY_NAMES or name.endswith(("_value",
                                                                            "_revenue"))):
        return "money"
    return None


def _words(text: str, *, header: bool) -> list[str]:
    import re

    return [w for w in re.split(r"[\s_]+" if header else r"\s+", text) if w] or [""]


def _fit(layout: _Layout, total_width: int) -> list[tuple[list[int], list[int]]]:
    """Column groups with their widths so that each table fits ``total_width``.

    Each column's natural width is its longest cell or header; its least width is its longest
    cell for a name, else its longest word, and at least the longest word of its header
    (cells split at spaces, headers also at underscores). When the columns do not fit with
    every cell on one line, later columns go to further tables that repeat the first column;
    within a table, widths shrink from natural toward least (headers wrap first, then cells),
    in proportion to what each can give.
    """
    n = len(layout.headers)
    natural, least = [], []
    for h, col, is_name in zip(layout.headers, layout.cells, layout.names, strict=True):
        longest = max((len(c) for c in col), default=0)
        natural.append(max(longest, len(h), 1))
        head_word = max(len(w) for w in _words(h, header=True))
        cell_word = longest if is_name else max(
            (len(w) for c in col for w in _words(c, header=False)), default=1)
        least.append(max(cell_word, head_word, 1))

    def room(k: int) -> int:  # content width left for k columns (padding 2, borders k + 1)
        return total_width - 3 * k - 1

    whole = [max(least[i], max((len(c) for c in layout.cells[i]), default=0))
             for i in range(n)]  # no cell wraps (headers may)
    groups, rest = [], list(range(n))
    key = [0] if n > 1 else []
    while rest:
        group = list(key) if groups else []
        for i in rest:
            if i in group:
                continue
            if len(group) > len(key) and sum(whole[j] for j in group + [i]) > room(
                    len(group) + 1):
                break
            group.append(i)
        rest = [i for i in rest if i not in group]
        groups.append(group)
    groups = _balance(groups, key, whole, room)
    return [(g, _share(g, layout, natural, least, max(room(len(g)), 1))) for g in groups]


def _balance(groups: list[list[int]], key: list[int], whole: list[int], room) -> list[list[int]]:
    """The same number of tables with the columns spread evenly (not one lonely last column),
    when every table still fits."""
    if len(groups) < 2:
        return groups
    others = [i for g in groups for i in g if i not in key]
    size = -(-len(others) // len(groups))
    even = [key + others[j:j + size] for j in range(0, len(others), size)]
    if all(sum(whole[i] for i in g) <= room(len(g)) for g in even):
        return even
    return groups


def _share(group: list[int], layout: _Layout, natural: list[int], least: list[int],
           room: int) -> list[int]:
    """Widths of ``group``'s columns in ``room``: natural when they fit; else headers wrap
    first (down to each column's widest cell), and only then cells wrap (down to their least)."""
    nat = [natural[i] for i in group]
    cell = [max(least[i], max((len(c) for c in layout.cells[i]), default=0)) for i in group]
    low = [least[i] for i in group]
    widths = nat
    for target in (cell, low):
        if sum(widths) <= room:
            return widths
        widths = _shrink(widths, [min(a, b) for a, b in zip(widths, target, strict=True)],
                         room)
    return widths  # a name wider than the terminal: rich folds it


def _shrink(widths: list[int], floor: list[int], room: int) -> list[int]:
    """``widths`` reduced toward ``floor`` to sum to ``room``, in proportion to what each
    column can give."""
    if sum(floor) >= room:
        return floor
    slack = [a - b for a, b in zip(widths, floor, strict=True)]
    spare = room - sum(floor)
    out = [b + (s * spare) // sum(slack) for b, s in zip(floor, slack, strict=True)]
    for j in sorted(range(len(out)), key=lambda j: -slack[j]):  # hand out the rounding
        if sum(out) < room and out[j] < widths[j]:
            out[j] += 1
    return out


def _rich_table(title: str, layout: _Layout, columns: list[int], widths: list[int]):
    from rich.table import Table

    table = Table(title=title, title_justify="left", title_style="bold")
    for i, w in zip(columns, widths, strict=True):
        header = layout.headers[i]
        if len(header) > w:  # wrap long headers at underscores too
            header = header.replace("_", " ")
        # widths are at least each name's length, so names never wrap; "fold" only breaks a
        # name wider than the whole terminal (rich's default would cut it with an ellipsis)
        table.add_column(header, width=w, overflow="fold",
                         justify="right" if layout.numeric[i] else "left",
                         style="bold" if i == 0 and layout.has_index else None)
    for r in range(len(layout.cells[0]) if layout.cells else 0):
        table.add_row(*(layout.cells[i][r] for i in columns))
    return table


def _is_range_index(frame) -> bool:
    import pandas as pd

    return isinstance(frame.index, pd.RangeIndex)


def _fmt(v: Any) -> str:
    """One value as text (:func:`journeymodel.io.formatting.cell`)."""
    from journeymodel.io.formatting import cell

    return cell(v)


def print_result(result, *, as_json: bool) -> None:
    """Print a :class:`journeymodel.models.base.Result` as JSON or as tables."""
    if as_json:
        print_json(result.json)
        return
    for title, frame in result.tables:
        print_frame(title, frame, kinds=getattr(result, "kinds", None))
    for note in result.notes:
        console().print(note)


def print_fit_result(result, out: Path, *, as_json: bool) -> None:
    """What every ``fit`` command prints: the model's summary (or JSON) and where it was saved."""
    result.json["model"] = str(out)
    if as_json:
        print_json(result.json)
        return
    print_result(result, as_json=False)
    console().print(f"saved {out}")


def write_frame(frame, path: Path) -> Path:
    """Write a DataFrame to CSV, TSV or Parquet, chosen by the file suffix, atomically (a
    temporary file renamed into place; see :func:`journeymodel.io.outputs.write_frame`)."""
    from journeymodel.io.outputs import write_frame as write

    return write(frame, path)
