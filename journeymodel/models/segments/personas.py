"""The event log written back with a persona column from the segments, so every model that works
by persona (``fit conversion``, ``fit churn``, ``compare --by persona``, the report) runs per
discovered segment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from journeymodel.data.options import ReadOptions
    from journeymodel.models.segments.model import SegmentModel


def persona_log(model: SegmentModel, source: str | Path | pd.DataFrame,
                options: ReadOptions | None = None, *, column: str = "persona"
                ) -> tuple[pd.DataFrame, int]:
    """Every row of the event log ``source`` with ``column`` set to its customer's segment.

    Customers are assigned to their most probable segment given all their journeys
    (:meth:`SegmentModel.predict`); rows without a customer id get no persona (empty). All the
    log's columns and rows are kept as read.

    Parameters
    ----------
    model : SegmentModel
    source : path or DataFrame
        The event log (as for :func:`journeymodel.data.journeys.load_journeys`).
    options : ReadOptions, optional
        How to read it (column names, labels, gap).
    column : str
        Name of the persona column written.

    Returns
    -------
    (DataFrame, int)
        The log with the persona column, and the number of customers assigned.

    Raises
    ------
    InputError
        The log already has a column named ``column`` (choose another name).
    """
    from journeymodel.data.columns import encode
    from journeymodel.data.events import events_from_table
    from journeymodel.data.journeys import build_journeys
    from journeymodel.data.options import ReadOptions
    from journeymodel.data.readers import read_table

    options = options or ReadOptions()
    table, name = read_table(source, options)
    if column in table.column_names:
        raise InputError(f"the log already has a column {column!r}; name the segments' column "
                         "otherwise (--persona-name)", source=name)
    members = model.predict(build_journeys(events_from_table(table, name, options),
                                           options)).frame
    codes, ids = encode(table[options.customer_col], sort=False)
    ids = np.asarray(ids, dtype=str)
    members = members.sort_values("customer_id", kind="stable")
    known = np.asarray(members["customer_id"], dtype=str)
    where = np.minimum(np.searchsorted(known, ids), max(len(known) - 1, 0))
    found = (known[where] == ids) if len(known) else np.zeros(len(ids), bool)
    label = np.where(found, np.asarray(members["segment"], dtype=object)[where]
                     if len(known) else None, None)
    frame = table.to_pandas()
    frame[column] = np.where(codes >= 0, label[np.maximum(codes, 0)], None) if len(ids) else None
    return frame, len(members)


def write_persona_log(model: SegmentModel, source: str | Path, out: str | Path,
                      options: ReadOptions | None = None, *, column: str = "persona") -> int:
    """Write :func:`persona_log` to ``out`` (CSV, TSV or Parquet by suffix, atomically);
    returns the number of rows written."""
    from journeymodel.io.outputs import write_frame

    frame, _ = persona_log(model, source, options, column=column)
    write_frame(frame, out)
    return len(frame)
