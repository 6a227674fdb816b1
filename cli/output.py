"""What commands print and write: tables, JSON, result summaries and output files.

Imports only the standard library at the top (numpy, pandas and rich load inside the functions),
so every command module can import it without slowing ``journeymodel --help``.
"""

import json
import sys
from pathlib import Path
from typing import Any

def console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def print_frame(title: str, frame, *, max_rows: int = 40) -> None:
    """Print a DataFrame as a rich table (numbers right-aligned, floats to 4 significant)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", title_style="bold")
    index_name = frame.index.name
    show_index = index_name is not None or not _is_range_index(frame)
    if show_index:
        table.add_column(str(index_name or ""), style="bold")
    for col in frame.columns:
        numeric = frame[col].dtype.kind in "iuf"
        table.add_column(str(col), justify="right" if numeric else "left")
    for idx, row in frame.head(max_rows).iterrows():
        cells = [_fmt(v) for v in row.tolist()]
        table.add_row(*([str(idx)] if show_index else []), *cells)
    out = console()
    out.print(table)
    if len(frame) > max_rows:
        out.print(f"... {len(frame) - max_rows} more rows (use --json or -o for all)")


def _is_range_index(frame) -> bool:
    import pandas as pd

    return isinstance(frame.index, pd.RangeIndex)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        if v == int(v) and abs(v) < 1e12:
            return f"{int(v):,}" if abs(v) >= 1000 else str(int(v))
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int) and abs(v) >= 1000:
        return f"{v:,}"
    return str(v)


def print_result(result, *, as_json: bool) -> None:
    """Print a :class:`journeymodel.models.base.Result` as JSON or as tables."""
    if as_json:
        print_json(result.json)
        return
    for title, frame in result.tables:
        print_frame(title, frame)
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
    """Write a DataFrame to CSV or Parquet, chosen by the file suffix."""
    from journeymodel.errors import OptionError

    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    elif suffix in (".csv", ".txt", ".tsv"):
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    else:
        raise OptionError(f"{path}: output must end in .csv, .tsv or .parquet")
    return path
