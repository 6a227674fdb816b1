"""Simulating journeys from a fitted stages model, as a canonical event log (vectorised)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from journeymodel.data.journeys import CHURN, CONVERSION, OUTCOMES
from journeymodel.fit import hmm
from journeymodel.stats.sequences import DIRECT, N_STATUS, UNKNOWN

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.base import JourneyMeta
    from journeymodel.models.stages.model import StageModel


def simulate_chunk(model: StageModel, n: int, rng: np.random.Generator, *, offset: int = 0,
                   n_total: int | None = None, max_length: int = 200) -> pd.DataFrame:
    """``n`` journeys drawn from the fitted HMM (all at once, vectorised across journeys) as a
    canonical event log, customers numbered from ``offset + 1`` of ``n_total``
    (:func:`journeymodel.models.simulate.simulated_ids`). A journey ends at its first outcome symbol
    or after ``max_length`` touchpoints."""
    from journeymodel.models.simulate import simulated_ids

    B = model.params_.emissionprob.reshape(model.n_stages_, -1, N_STATUS).copy()
    B[:, :, UNKNOWN] = 0.0
    p = hmm.HMMParams(model.startprob_, model.transmat_, B.reshape(model.n_stages_, -1))
    stops = [x * N_STATUS + e for x in range(len(model.symbols_)) for e in (1, 2, 3)]
    codes, offsets, _ = hmm.sample(p, int(n), stop_symbols=stops, max_length=max_length,
                                   seed=rng)
    log = event_log(codes, offsets, model.symbols_, model.timing_, model.journeys_, rng)
    ids = simulated_ids(int(n), offset=offset, n_total=n_total)
    log["customer_id"] = ids[log["customer_id"].to_numpy()]
    return log


def event_log(codes: np.ndarray, offsets: np.ndarray, symbols: tuple[str, ...],
              timing: dict[str, float], meta: JourneyMeta, rng: np.random.Generator
              ) -> pd.DataFrame:
    """Simulated combined-symbol sequences as a canonical event log (vectorised); customers are
    the journeys' positions 0 .. n-1 (:func:`simulate_chunk` names them).

    Steps are ``timing["step_gap"]`` apart on average (exponential gaps), journeys start
    uniformly in ``timing["origin"] + [0, span)``; without times, a step is one period.
    """
    n = len(offsets) - 1
    lengths = np.diff(offsets)
    x, status = codes // N_STATUS, codes % N_STATUS
    journey = np.repeat(np.arange(n), lengths)
    names = np.asarray(symbols, dtype=object)
    is_tp = names[x] != DIRECT
    out_rows = np.isin(status, (1, 2))  # conversion, churn rows (a dropoff leaves none)
    label = np.where(status == 1, OUTCOMES[CONVERSION], OUTCOMES[CHURN])
    step = np.arange(len(codes)) - np.repeat(offsets[:-1], lengths)
    gap, origin, span = timing["step_gap"], timing["origin"], timing["span"]
    if np.isfinite(gap):
        start = origin + rng.random(n) * span
        t = start[journey] + within_journey_cumsum(rng.exponential(gap, len(codes)), offsets)
    else:
        t = step.astype(np.float64)
    eps = 60.0 if meta.time_kind == "datetime" else 0.0
    times = np.concatenate([t[is_tp], t[out_rows] + eps])
    who = np.concatenate([journey[is_tp], journey[out_rows]])
    what = np.concatenate([names[x[is_tp]], label[out_rows]])
    order = np.lexsort((np.concatenate([np.zeros(is_tp.sum()), np.ones(out_rows.sum())]),
                        times, who))
    if meta.time_kind == "datetime":
        ts = pd.to_datetime(times[order], unit="s", utc=True)
    elif meta.time_kind == "period":
        ts = np.floor(times[order]).astype(np.int64)
    else:
        ts = times[order].astype(np.int64)
    return pd.DataFrame({"customer_id": who[order], "timestamp": ts,
                         "touchpoint": what[order]})


def within_journey_cumsum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each journey (exclusive of the current value).

    Examples
    --------
    >>> within_journey_cumsum(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 2, 4])).tolist()
    [0.0, 1.0, 0.0, 3.0]
    """
    total = np.cumsum(values) - values
    return total - np.repeat(total[offsets[:-1]] if len(values) else np.zeros(0),
                             np.diff(offsets))
