"""A table of named columns without pandas, for results printed by commands that otherwise
never need pandas (``fit markov``'s summary: pandas costs 0.3-0.45 s to import, a fifth of
the process at 100k customers; issue 20).

:class:`Table` has what :func:`journeymodel.cli.output.print_frame` reads of a DataFrame (its
length, columns, a column's values, the first rows); anything else (``itertuples``,
``to_dict``, ...) is answered by the equivalent DataFrame, made when first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class Table:
    """Named columns of equal length, in order, with a plain 0..n-1 row numbering.

    Parameters
    ----------
    columns : dict of str to array-like
        Each column's values; text columns are kept as object arrays (as pandas keeps them).

    Examples
    --------
    >>> t = Table({"state": ["a", "b"], "visits": [3.0, 1.0]})
    >>> len(t), t.columns, t["visits"].tolist(), t.to_records()
    (2, ['state', 'visits'], [3.0, 1.0], [{'state': 'a', 'visits': 3.0}, {'state': 'b', \
'visits': 1.0}])
    """

    def __init__(self, columns: dict[str, Any]) -> None:
        self._columns = {str(k): _array(v) for k, v in columns.items()}
        lengths = {len(v) for v in self._columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        self._length = lengths.pop() if lengths else 0
        self._frame: pd.DataFrame | None = None

    def __len__(self) -> int:
        return self._length

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def take(self, rows: np.ndarray) -> Table:
        """The rows at the positions ``rows``, numbered 0.. again."""
        return Table({k: v[rows] for k, v in self._columns.items()})

    def head(self, n: int = 5) -> Table:
        return self.take(np.arange(min(n, self._length)))

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per row, with plain Python values (``DataFrame.to_dict("records")``)."""
        names = self.columns
        values = [self._columns[k].tolist() for k in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]

    def to_pandas(self) -> pd.DataFrame:
        """The same table as a pandas DataFrame (a RangeIndex, the same dtypes)."""
        if self._frame is None:
            import pandas as pd

            self._frame = pd.DataFrame(dict(self._columns))
        return self._frame

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.to_pandas(), name)

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self.columns)})"


def _array(values: Any) -> np.ndarray:
    """A column as numpy: numbers as they are, anything else as an object array."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr
    out = np.empty(len(arr), dtype=object)
    out[:] = list(values)
    return out
