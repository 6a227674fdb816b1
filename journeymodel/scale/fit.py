"""Fit any model on an event log with Dask: statistics summed over the log's partitions on
the workers, the fit on the client (:func:`fit_scaled`)."""

from __future__ import annotations

from typing import Any

from journeymodel.data.options import ReadOptions
from journeymodel.errors import OptionError
from journeymodel.scale.cluster import Engine
from journeymodel.scale.engine import map_log

__all__ = ["fit_scaled", "fit_scaled_holdout"]


def fit_scaled(model: Any, source: Any, options: ReadOptions | None = None, *,
               engine: Engine | None = None, client: Any = None, show_progress: bool = False,
               **fit_kw: Any) -> Any:
    """Fit ``model`` on the log ``source`` with Dask: ``model.fit_stats(sum of
    model.stats_of(partition))``, remembering the whole log's ledger and journey facts.

    Same answers as ``model.fit(load_journeys(source, options))`` in one process: the same
    counts and ledger, attribution to rounding, the same EM start and likelihood. The stages
    model's EM runs its E-step on the workers (:mod:`journeymodel.scale.em`); a Markov
    ``order="auto"`` is chosen from held-out counts summed over the partitions
    (:mod:`journeymodel.scale.markov`).

    Parameters
    ----------
    model : MarkovJourneyModel, StageModel, ConversionModel, ChurnModel or SegmentModel
        An unfitted model with its parameters (pickled to the workers).
    source : str, Path or dask.dataframe.DataFrame
        File, folder, glob or fsspec URL of the log, or a Dask DataFrame of its events.
    options : ReadOptions, optional
    engine : Engine, optional
        ``Engine(workers=2)``, ``Engine(cluster="tcp://host:8786")``; or pass ``client``.
    client : dask.distributed.Client, optional
        A running client (left open).
    show_progress : bool
        Show progress bars (on stderr) while the workers scan and reduce the log.
    **fit_kw
        Passed to ``fit_stats`` (e.g. ``progress`` of the Bayesian fits and of EM).

    Raises
    ------
    OptionError
        No engine.
    """
    engine = engine or Engine(client=client)
    if not engine.active:
        raise OptionError("fit_scaled needs a Dask client or an engine (workers, cluster)")
    kind = getattr(model, "model_type", None)
    if kind == "stages":  # EM: the E-step on the workers
        from journeymodel.scale.cluster import connect
        from journeymodel.scale.em import check_engine, fit_stages_scaled

        check_engine(model)  # before a cluster starts
        with connect(engine) as client:
            result = fit_stages_scaled(model, source, options, client,
                                       show_progress=show_progress, **fit_kw)
    elif kind == "markov":  # --order auto: the order chosen from summed held-out counts
        from journeymodel.scale.markov import fit_from, fit_statistics

        result = map_log(source, options, engine, fit_statistics(model), progress=show_progress)
        fit_from(model, result.stats)
    else:
        result = map_log(source, options, engine, model.stats_of, progress=show_progress)
        model.fit_stats(result.stats, **fit_kw)
    model.ledger_ = result.ledger
    model.journeys_ = result.meta
    return model


def fit_scaled_holdout(model: Any, source: Any, options: ReadOptions | None = None, *,
                       fraction: float, seed: int = 0, engine: Engine | None = None,
                       client: Any = None, show_progress: bool = False) -> tuple[Any, dict]:
    """``fit markov --holdout`` on Dask: fit the Markov ``model`` on the training journeys of
    ``source`` and score the held-out ones (:func:`journeymodel.scale.markov.
    fit_with_holdout`); the same split, model and scores as in one process.

    Returns
    -------
    model, scores
        ``scores``: ``n_journeys``, ``log_loss``, ``auc``, ``unknown_state``.

    Raises
    ------
    OptionError
        ``fraction`` not between 0 and 1, or no engine.
    """
    from journeymodel.scale.cluster import connect
    from journeymodel.scale.markov import fit_with_holdout

    engine = engine or Engine(client=client)
    if not engine.active:
        raise OptionError("fit_scaled_holdout needs a Dask client or an engine (workers, "
                          "cluster)")
    if not 0.0 < fraction < 1.0:
        raise OptionError(f"--holdout must be between 0 and 1 (got {fraction})")
    with connect(engine) as client:
        return fit_with_holdout(model, source, options, client, fraction, seed,
                                show_progress=show_progress)
