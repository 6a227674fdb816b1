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
    """Named columns of equal length, in order, with a plain 0..n-1 row numbering or a row
    label per row (``index``, printed as a first column headed ``index_name``).

    Parameters
    ----------
    columns : dict of str to array-like
        Each column's values; text columns are kept as object arrays (as pandas keeps them).
    index : array-like, optional
        A label per row (a DataFrame's index).
    index_name : str, optional

    Examples
    --------
    >>> t = Table({"state": ["a", "b"], "visits": [3.0, 1.0]})
    >>> len(t), t.columns, t["visits"].tolist(), t.to_records()
    (2, ['state', 'visits'], [3.0, 1.0], [{'state': 'a', 'visits': 3.0}, {'state': 'b', \
'visits': 1.0}])
    """

    def __init__(self, columns: dict[str, Any], index: Any = None,
                 index_name: str | None = None) -> None:
        self._columns = {str(k): _array(v) for k, v in columns.items()}
        self.index = None if index is None else _array(index)
        self.index_name = index_name
        lengths = {len(v) for v in self._columns.values()}
        if self.index is not None:
            lengths.add(len(self.index))
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
        return Table({k: v[rows] for k, v in self._columns.items()},
                     None if self.index is None else self.index[rows], self.index_name)

    def head(self, n: int = 5) -> Table:
        return self.take(np.arange(min(n, self._length)))

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per row, with plain Python values (``DataFrame.to_dict("records")``)."""
        names = self.columns
        values = [self._columns[k].tolist() for k in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]

    def to_index_dict(self) -> dict[Any, dict[str, Any]]:
        """``{row label: {column: value}}`` with plain Python values
        (``DataFrame.to_dict("index")``; the labels must be distinct)."""
        labels = self.index.tolist() if self.index is not None else list(range(len(self)))
        if len(set(labels)) != len(labels):
            raise ValueError("the row labels must be distinct")
        return dict(zip(labels, self.to_records(), strict=True))

    def to_pandas(self) -> pd.DataFrame:
        """The same table as a pandas DataFrame (the same dtypes; a RangeIndex, or the row
        labels as its index)."""
        if self._frame is None:
            import pandas as pd

            index = None if self.index is None else pd.Index(self.index, name=self.index_name)
            self._frame = pd.DataFrame(dict(self._columns), index=index)
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
