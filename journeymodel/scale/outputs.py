"""Per-customer outputs on Dask: each partition's rows (``predict``'s predictions, one row per
journey in flight or per customer; ``forecast -o``'s rows, :mod:`journeymodel.scale.inflight`)
are computed and written by its worker as one Parquet part file, so no process ever holds all
of them (``docs/scale.md``, "Per-customer outputs").

:func:`write_parts` runs a rows function over the partitions of a log
(:func:`journeymodel.scale.engine.map_log`) through :class:`PartWriter`: the worker sorts its
rows by customer (then journey, stably), writes them into a temporary folder beside the output
(:func:`journeymodel.io.outputs.atomic_folder`) under a name made from the partition's first
customer id, and sends back only that name, its number of rows and an additive summary
(:class:`WrittenParts`). When every partition succeeded, the client names the files
``part-00000.parquet``, ``part-00001.parquet``, ... in the order of their first customer and
renames the folder into place: the output appears whole or not at all.

The same log, options and cluster give the same partitions, hence the same files with the same
bytes; reading every part and sorting the rows by customer gives the one-process table sorted
the same way.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from journeymodel.stats.additive import Additive

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from journeymodel.data.journeyset import JourneySet
    from journeymodel.data.options import ReadOptions
    from journeymodel.scale.cluster import Engine
    from journeymodel.scale.parts import PartResult

__all__ = ["PART_NAME", "PartWriter", "PredictRows", "PredictSummary", "WrittenParts",
           "predict_json", "sort_rows", "write_parts"]

#: Name of the i-th part file of an output folder.
PART_NAME = "part-{:05d}.parquet"


def _plus(a: Any, b: Any) -> Any:
    """``a + b`` where either may be None (a part without a summary)."""
    return a if b is None else b if a is None else a + b


@dataclass(frozen=True, eq=False)
class WrittenParts(Additive):
    """Part files written by the workers: ``(key, file name, rows)`` of each, sorted by key
    (the first customer id of its partition), and the additive summary of their rows.

    Examples
    --------
    >>> a = WrittenParts((("c7", "x.parquet", 2),), None)
    >>> b = WrittenParts((("a1", "y.parquet", 0),), None)
    >>> (a + b).files, (a + b).rows
    ((('a1', 'y.parquet', 0), ('c7', 'x.parquet', 2)), 2)
    """

    files: tuple[tuple[str, str, int], ...]
    summary: Any = None

    def _add(self, other: WrittenParts) -> WrittenParts:
        return WrittenParts(tuple(sorted(self.files + other.files)),
                            _plus(self.summary, other.summary))

    @property
    def rows(self) -> int:
        """Rows of every part file together."""
        return sum(n for _, _, n in self.files)


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by ``customer_id`` (missing ids last), a customer's rows in their order (stable);
    the index renumbered."""
    return frame.sort_values("customer_id", kind="stable", na_position="last").reset_index(
        drop=True)


def partition_key(journeys: JourneySet) -> str:
    """The smallest customer id of a partition: partitions hold whole customers, so no two
    share it."""
    customers = np.asarray(journeys.customers, dtype=object)  # object: min compares text
    return str(customers.min()) if len(customers) else ""


class PartWriter:
    """``map_log``'s ``part_fn`` for a table: a partition's journeys -> its rows (from
    ``rows_fn``, returning ``(frame, summary)``), sorted by :func:`sort_rows` and written as
    one Parquet file in ``folder``; returns the :class:`WrittenParts` of that file.

    Picklable (sent to the workers) when ``rows_fn`` is.
    """

    def __init__(self, rows_fn: Any, folder: str | Path) -> None:
        self.rows_fn = rows_fn
        self.folder = str(folder)

    def __call__(self, journeys: JourneySet) -> WrittenParts:
        from journeymodel.io.outputs import write_part

        frame, summary = self.rows_fn(journeys)
        key = partition_key(journeys)
        name = f"key-{hashlib.sha1(key.encode()).hexdigest()[:20]}.parquet"
        write_part(sort_rows(frame), self.folder, name)
        return WrittenParts(((key, name, len(frame)),), summary)


def write_parts(source: Any, options: ReadOptions | None, engine: Engine, rows_fn: Any,
                out: str | Path, *, what: str = "rows", progress: bool = False,
                check: Any = None) -> tuple[PartResult, WrittenParts]:
    """Write the rows ``rows_fn`` makes of each partition of the log ``source`` as the folder
    ``out`` of Parquet part files, on Dask.

    Parameters
    ----------
    source : str, Path or dask.dataframe.DataFrame
        The log (file, folder, glob, URL) or a Dask DataFrame of its events.
    options : ReadOptions
    engine : Engine
    rows_fn : callable
        ``JourneySet -> (DataFrame, additive summary or None)``, run on the workers (it must
        pickle); the frame has a ``customer_id`` column.
    out : str or Path
        The folder to create (it must not exist; checked by
        :func:`journeymodel.io.outputs.check_folder_output`). Every worker must see its
        file system (local workers do; a cluster of many machines needs a shared one).
    what : str
        What the rows are, for error messages.
    progress : bool
        Progress bars on stderr.
    check : callable, optional
        ``PartResult -> None``, run on the client when every part is written and before the
        folder is renamed into place: an exception it raises leaves no folder (``forecast``
        checks ``--as-of`` against the end of the log this way).

    Returns
    -------
    result : PartResult
        The log's ledger and journey facts; ``result.stats`` is the :class:`WrittenParts`.
    parts : WrittenParts
        The part files under their final names (``part-00000.parquet``, ...), in order.
    """
    from journeymodel.io.outputs import atomic_folder
    from journeymodel.scale.engine import map_log

    with atomic_folder(out, what) as tmp:
        # an absolute path: the workers' working folder may not be this process's
        writer = PartWriter(rows_fn, Path(tmp).resolve())
        result = map_log(source, options, engine, writer, progress=progress)
        if check is not None:
            check(result)
        parts = _name_parts(Path(tmp), result.stats)
    return result, parts


def _name_parts(folder: Path, parts: WrittenParts) -> WrittenParts:
    """Parts renamed ``part-00000.parquet``, ... in the order of their keys; files without
    rows are removed (all but the first when no part has rows: the folder keeps the columns)."""
    files = list(parts.files)
    keep = [f for f in files if f[2]] or files[:1]
    kept = {name for _, name, _ in keep}
    for _, name, _ in files:
        if name not in kept:
            os.remove(folder / name)
    named = []
    for i, (key, name, rows) in enumerate(keep):
        os.rename(folder / name, folder / PART_NAME.format(i))
        named.append((key, PART_NAME.format(i), rows))
    return WrittenParts(tuple(named), parts.summary)


# ---------------------------------------------------------------------------------------------
# predict


@dataclass(frozen=True, eq=False)
class PredictSummary(Additive):
    """What ``predict --json`` says besides its rows, additively: rows (journeys in flight, or
    customers of a segments model), in-flight journeys in an unknown state and backed off
    (Markov), and the sum and number of the finite P(conversion) (Markov: their mean).

    Examples
    --------
    >>> s = PredictSummary(2, 1, 0, 0.5, 1) + PredictSummary(3, 0, 1, 0.75, 2)
    >>> s.rows, s.unknown, s.backed_off, s.p_sum / s.p_n
    (5, 1, 1, 0.4166666666666667)
    """

    rows: int
    unknown: int = 0
    backed_off: int = 0
    p_sum: float = 0.0
    p_n: int = 0

    def _add(self, other: PredictSummary) -> PredictSummary:
        return PredictSummary(self.rows + other.rows, self.unknown + other.unknown,
                              self.backed_off + other.backed_off, self.p_sum + other.p_sum,
                              self.p_n + other.p_n)


class PredictRows:
    """A partition's predictions by ``model.predict`` and their :class:`PredictSummary`
    (``rows_fn`` of :func:`write_parts`); the fitted model is pickled to the workers."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, journeys: JourneySet) -> tuple[pd.DataFrame, PredictSummary]:
        result = self.model.predict(journeys)
        frame = result.frame
        if self.model.model_type != "markov":
            return frame, PredictSummary(len(frame))
        p = frame["p_conversion"].to_numpy(np.float64)
        finite = np.isfinite(p)
        return frame, PredictSummary(len(frame), result.json["n_unknown_state"],
                                     result.json["n_backed_off"], float(p[finite].sum()),
                                     int(finite.sum()))


def predict_json(model: Any, summary: PredictSummary, out: str | Path,
                 n_parts: int) -> dict[str, Any]:
    """``predict --json`` of a run on Dask: the keys one process prints, except that the
    per-row list (``predictions``, or ``members`` of a segments model) is in the part files
    (``out``, ``parts``). The Markov ``mean_p_conversion`` is the partitions' sums added: equal
    to one process's to rounding (about 1e-16 relative), not always to the bit."""
    kind = model.model_type
    if kind == "markov":
        js = {"n_in_flight": summary.rows, "n_unknown_state": summary.unknown,
              "n_backed_off": summary.backed_off,
              "mean_p_conversion": summary.p_sum / summary.p_n if summary.p_n else None}
    elif kind == "stages":
        js = {"n_in_flight": summary.rows, "stages": list(model.stage_names_)}
    else:
        js = {"n_customers": summary.rows, "segments": list(model.segment_names_)}
    return {**js, "out": str(out), "parts": n_parts}
