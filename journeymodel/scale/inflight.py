"""``forecast --from EVENTS`` on Dask: every worker forecasts the journeys in flight of its
partitions (whole customers each) and, with ``-o``, writes their rows as Parquet part files
(:func:`journeymodel.scale.outputs.write_parts`); the client adds the partitions' additive
summaries (:class:`~journeymodel.analysis.forecast.ForecastSummary`: totals and daily
conversions per posterior draw) and prints them (:func:`forecast_on_dask`).

Why this gives one process's answer, to the bit: a journey's simulated outcomes depend on the
journey (customer id and start), the draw and the seed only, and every partition draws the same
posterior parameters for draw ``d`` (:mod:`journeymodel.analysis.chance`). So the rows of a
partition are the one-process rows of its journeys, and the per-draw counts of the partitions
add up to the one-process counts exactly (integers): the printed totals, intervals and daily
conversions are identical, and the intervals stay joint across journeys (every journey of draw
``d`` sees the same parameters): splitting does not narrow them. The client holds the per-draw
summary only, never the journeys in flight.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.analysis.forecast import Forecast, ForecastSummary
    from journeymodel.data.journeyset import JourneySet
    from journeymodel.data.options import ReadOptions
    from journeymodel.scale.cluster import Engine
    from journeymodel.scale.outputs import WrittenParts
    from journeymodel.scale.parts import PartResult

__all__ = ["ForecastRows", "forecast_on_dask"]


class ForecastRows:
    """A partition's forecast (:func:`journeymodel.analysis.forecast.forecast_part`):
    ``(rows, summary)`` with ``rows`` (``rows_fn`` of
    :func:`~journeymodel.scale.outputs.write_parts`), else the summary alone (``part_fn`` of
    :func:`~journeymodel.scale.engine.map_log`). The fitted model is pickled to the workers."""

    def __init__(self, model: Any, horizon: str, n_draws: int, seed: int, *,
                 rows: bool = True) -> None:
        self.model = model
        self.horizon = horizon
        self.n_draws = n_draws
        self.seed = seed
        self.rows = rows

    def __call__(self, journeys: JourneySet) -> Any:
        from journeymodel.analysis.forecast import forecast_part

        frame, summary = forecast_part(self.model, journeys, self.horizon,
                                       n_draws=self.n_draws, seed=self.seed, rows=self.rows)
        return (frame, summary) if self.rows else summary


def forecast_on_dask(model: Any, source: Any, options: ReadOptions, engine: Engine,
                     horizon: str, *, as_of: str | None = None, n_draws: int = 200,
                     seed: int = 0, out: str | Path | None = None, progress: bool = False
                     ) -> tuple[Forecast, PartResult, WrittenParts | None]:
    """:func:`journeymodel.analysis.forecast.forecast_in_flight` of the log ``source`` read
    on Dask up to ``as_of``, the journeys in flight forecast by the workers.

    Parameters
    ----------
    model : MarkovJourneyModel or StageModel
    source : str, Path or dask.dataframe.DataFrame
    options : ReadOptions
    engine : Engine
    horizon : str
    as_of : str, optional
    n_draws, seed : int
    out : str or Path, optional
        A new folder: the workers write one row per journey in flight there as Parquet part
        files (the rows of one process, sorted by customer).
    progress : bool

    Returns
    -------
    forecast : Forecast
        Equal to one process's, bit for bit (``journeys`` and ``start`` are None).
    result : PartResult
        The whole log's ledger and journey facts.
    parts : WrittenParts or None
        The part files under their final names (with ``out``).

    Raises
    ------
    OptionError
        ``as_of`` after the end of the log by more than the gap (no journey in flight, and no
        folder written), or as :func:`~journeymodel.analysis.forecast.forecast_in_flight`.
    """
    from journeymodel.analysis.forecast import Forecast, check_draws, check_model
    from journeymodel.scale.engine import map_log
    from journeymodel.scale.outputs import write_parts

    n_draws = check_draws(n_draws)
    check_model(model)
    read = options if as_of is None else options.replace(observed_until=as_of)

    def check(result: PartResult) -> None:
        _check_as_of(result, result.stats.summary, as_of)

    if out is None:
        result = map_log(source, read, engine, ForecastRows(model, horizon, n_draws, seed,
                                                            rows=False), progress=progress)
        summary, parts = result.stats, None
        _check_as_of(result, summary, as_of)
    else:
        result, parts = write_parts(source, read, engine,
                                    ForecastRows(model, horizon, n_draws, seed), out,
                                    what="forecast rows", progress=progress, check=check)
        summary = parts.summary
    meta = result.meta
    return (Forecast.of(summary, float(meta.observed_until), horizon, meta.time_kind, n_draws),
            result, parts)


def _check_as_of(result: PartResult, summary: ForecastSummary, as_of: str | None) -> None:
    """``--as-of`` more than the gap after the log's last event: no journey is in flight."""
    from journeymodel.errors import OptionError

    meta = result.meta
    late = result.ledger.dropped.get("after_observed_until", 0)
    if as_of is not None and not late and meta.gap is not None and (
            meta.observed_until > summary.last_end + meta.gap):
        raise OptionError(f"--as-of {as_of} is after the end of the log: its last event is "
                          "more than the gap before it, so no journey is in flight then; "
                          "leave --as-of out to forecast from the end of the log")
