"""The customer's experience along journeys: emotion curves and what follows each switch.

Counted once at fit time from the journeys' events (the additive statistic
:class:`journeymodel.stats.experience.ExperienceStats`) and stored in the model file as the
``experience`` group (:func:`experience_dataset`), so that ``journeymodel pain-points`` and the
report need only the model file.

Sentiment is the per-event score already normalised to -1..1 (``--sentiment-scale``); events
without a score are *unscored*: they are left out of every mean and counted apart, never taken
as 0. Each mean comes with a ``ci`` interval (94% by default) from Student's t on the effective
number of scored events, ``n_eff = (sum w)^2 / sum w^2`` (the posterior of a mean under a flat
prior); weights are journey weights, times stage probabilities for the stages' curve.

Arrivals are the steps of a journey: the first touchpoint arrives from ``(start)``, every later
one from the touchpoint before it. What follows an arrival is *known* unless it is the last
touchpoint of a censored journey; it is a *drop-off* when it is the last touchpoint of a journey
that dropped off. Counts of arrivals, drop-offs and conversions per (from, to) channel pair and
per (from, to) device pair are the evidence behind leaks and channel/device gaps
(:mod:`journeymodel.analysis.painpoints`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from journeymodel.data.journeys import JourneySet
from journeymodel.stats.experience import MAX_POSITION, ExperienceStats, Moments, moments
from journeymodel.stats.experience import experience_stats as experience_counts

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

START = "(start)"
__all__ = ["START", "MAX_POSITION", "emotion_summary", "experience_arrays",
           "experience_counts", "experience_dataset", "journey_experience", "mean_interval"]


def _interval(m: Moments | None, n_groups: int, ci: float) -> dict[str, np.ndarray]:
    """``scored``, ``mean``, ``low``, ``high`` from :class:`Moments` (all NaN / 0 for None)."""
    if m is None:
        nan = np.full(n_groups, np.nan)
        return {"scored": np.zeros(n_groups), "mean": nan, "low": nan.copy(),
                "high": nan.copy()}
    # stdtrit is what scipy.stats.t.ppf evaluates (same bits), without importing scipy.stats
    from scipy.special import stdtrit

    sw, sw2, mean, ss = m.sw, m.sw2, m.mean, m.ss
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = sw * sw / sw2
        var = ss / (sw - sw2 / sw)  # unbiased for reliability weights; ss / (n - 1) when w = 1
        half = stdtrit(np.maximum(n_eff - 1, 1e-12), 0.5 + ci / 2) * np.sqrt(var / n_eff)
    half = np.where(n_eff > 1 + 1e-9, half, np.nan)
    return {"scored": sw, "mean": mean, "low": mean - half, "high": mean + half}


def mean_interval(values: np.ndarray, group: np.ndarray, n_groups: int,
                  weight: np.ndarray | None = None, ci: float = 0.94) -> dict[str, np.ndarray]:
    """Weighted mean of ``values`` per group with a ``ci`` interval; NaN values are unscored.

    Returns ``scored`` (sum of weights of scored values), ``mean``, ``low`` and ``high`` per
    group (NaN where the group has no scored value; no interval below two effective values).

    Examples
    --------
    >>> r = mean_interval(np.array([0.5, np.nan, -0.5, 1.0]), np.array([0, 0, 0, 1]), 2)
    >>> r["scored"].tolist(), r["mean"].tolist()
    ([2.0, 1.0], [0.0, 1.0])
    >>> bool(r["low"][0] < 0 < r["high"][0]), bool(np.isnan(r["low"][1]))
    (True, True)
    """
    return _interval(moments(values, group, n_groups, weight), n_groups, ci)


def experience_dataset(stats: ExperienceStats, ci: float = 0.94) -> xr.Dataset:
    """The labelled dataset of :func:`journey_experience` from its statistic
    (:func:`experience_counts`, or a sum of them over parts of a log)."""
    import xarray as xr

    data, coords, attrs = experience_arrays(stats, ci)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def experience_arrays(stats: ExperienceStats, ci: float = 0.94) -> tuple[dict, dict, dict]:
    """:func:`experience_dataset` as what ``xarray.Dataset`` takes: ``(data, coords, attrs)``
    (the model file's ``experience`` group, written without xarray by ``fit markov``)."""
    names = np.asarray(stats.touchpoints, dtype=object)
    T = len(names)
    has = stats.has_sentiment
    pairs = stats.pairs
    seen = pairs.n > 0  # pairs with a known sequel (in-flight ends only add sentiment)
    from_names = np.concatenate([[START], names])
    tp = _interval(stats.tp if has else None, T, ci)
    ps = _interval(stats.pos if has else None, MAX_POSITION, ci)
    pair_sent = _interval(pairs.sentiment.take(seen) if has else None, int(seen.sum()), ci)
    data = {
        **{f"tp_{k}": ("channel", v) for k, v in tp.items()},
        "tp_events": ("channel", stats.tp_events),
        "tp_journeys": ("channel", np.asarray(stats.tp_journeys, np.int64)),
        **{f"pos_{k}": ("position", v) for k, v in ps.items()},
        "pair_from": ("pair", from_names[pairs.frm[seen] + 1].astype(str)),
        "pair_to": ("pair", names[pairs.to[seen]].astype(str)),
        "pair_n": ("pair", pairs.n[seen]), "pair_dropped": ("pair", pairs.dropped[seen]),
        "pair_converted": ("pair", pairs.converted[seen]),
        **{f"pair_{k}": ("pair", v) for k, v in pair_sent.items()},
    }
    coords = {"channel": names.astype(str), "position": np.arange(1, MAX_POSITION + 1)}
    devices = np.asarray(stats.devices, dtype=object)
    dp = stats.device_pairs
    data.update({"dpair_from": ("device_pair", devices[dp.frm].astype(str)),
                 "dpair_to": ("device_pair", devices[dp.to].astype(str)),
                 "dpair_n": ("device_pair", dp.n), "dpair_dropped": ("device_pair", dp.dropped),
                 "dpair_converted": ("device_pair", dp.converted)})
    if stats.stages is not None:
        K = len(stats.stages)
        parts = ([_interval(stats.stage.take([k]), 1, ci) for k in range(K)] if has
                 else [_interval(None, 1, ci)] * K)
        for k in ("scored", "mean", "low", "high"):
            data[f"stage_{k}"] = ("stage_label", np.array([p[k][0] for p in parts]))
        data["stage_events"] = ("stage_label", stats.stage_events)
        data["stage_journeys"] = ("stage_label", np.asarray(stats.stage_journeys, np.int64))
        coords["stage_label"] = list(stats.stages)
    overall = _interval(stats.overall if has else None, 1, ci)
    attrs = {"sentiment_mean": float(overall["mean"][0]),
             "sentiment_low": float(overall["low"][0]),
             "sentiment_high": float(overall["high"][0]),
             "scored_events": int(stats.scored_events),
             "events": stats.n_events, "has_sentiment": int(has),
             "has_device": int(stats.has_device), "ci": float(ci)}
    return data, coords, attrs


def journey_experience(journeys: JourneySet, *, stage_posterior: np.ndarray | None = None,
                       stage_names: list[str] | None = None, ci: float = 0.94) -> xr.Dataset:
    """Emotion curves and switch outcomes of ``journeys``, as a labelled dataset.

    Parameters
    ----------
    journeys : JourneySet
    stage_posterior : ndarray, shape (n_events, K), optional
        Probability of each stage at each touchpoint (stages model); adds the stages' curve.
    stage_names : list of str, optional
        Labels of the K stages.
    ci : float
        Interval mass of every mean.

    Returns
    -------
    xarray.Dataset
        Dimension names do not clash with the models' own (the dataset is a child group of
        the model's tree). Per ``channel`` (touchpoint): ``tp_scored``, ``tp_mean``,
        ``tp_low``, ``tp_high`` (sentiment), ``tp_events`` and ``tp_journeys`` (journeys with a
        scored event there). Per ``position`` (1 .. 20, the last bin holding 20 and later):
        ``pos_*``. Per channel ``pair`` (from, to; from ``(start)`` for first touchpoints):
        ``pair_from``, ``pair_to``, ``pair_n`` (arrivals with a known sequel),
        ``pair_dropped``, ``pair_converted`` and the sentiment of the arrival
        (``pair_scored``, ``pair_mean``, ``pair_low``, ``pair_high``). Per ``device_pair``:
        ``dpair_from``, ``dpair_to``, ``dpair_n``, ``dpair_dropped``, ``dpair_converted``.
        With ``stage_posterior``, per ``stage_label``: ``stage_*`` (sentiment) and
        ``stage_events`` (expected touchpoints in the stage). Attributes: overall
        ``sentiment_mean`` / ``sentiment_low`` / ``sentiment_high``, ``scored_events``,
        ``events``, ``has_sentiment``, ``has_device``, ``ci``.
    """
    return experience_dataset(experience_counts(journeys, stage_posterior=stage_posterior,
                                                stage_names=stage_names), ci)


def emotion_summary(exp: xr.Dataset | None) -> tuple[dict | None, list]:
    """The emotion curve of a model for ``inspect``: JSON and tables (None, [] without data).

    JSON: ``{"average": {"mean", "low", "high"}, "scored_events", "events", "stages": {name:
    {"mean", "low", "high", "scored"}}, "touchpoints": {...}, "position": [{"position", ...}]}``
    (sentiment on -1..1; ``stages`` only for a stages model).
    """
    if exp is None or not exp.attrs.get("has_sentiment", 0):
        return None, []
    from journeymodel.io.table import Table  # tables without pandas (0.3-0.45 s, issue 20)

    def rows(prefix, labels, name):
        scored = np.asarray(exp[f"{prefix}_scored"].values)
        keep = scored > 0
        labels = np.asarray([str(x) for x in labels], dtype=object)
        return Table({"mean": np.asarray(exp[f"{prefix}_mean"].values)[keep],
                      "low": np.asarray(exp[f"{prefix}_low"].values)[keep],
                      "high": np.asarray(exp[f"{prefix}_high"].values)[keep],
                      "scored": scored[keep]}, index=labels[keep], index_name=name)

    def as_json(table):
        return {k: {c: (None if not np.isfinite(v) else float(v)) for c, v in row.items()}
                for k, row in table.to_index_dict().items()}

    tp = rows("tp", exp["channel"].values, "touchpoint")
    pos = rows("pos", [f"{p}" if p < MAX_POSITION else f"{p}+" for p in
                       exp["position"].values], "step")
    payload: dict = {
        "average": {"mean": exp.attrs["sentiment_mean"], "low": exp.attrs["sentiment_low"],
                    "high": exp.attrs["sentiment_high"]},
        "scored_events": int(exp.attrs["scored_events"]), "events": int(exp.attrs["events"]),
        "touchpoints": as_json(tp),
        "position": [{"position": k, **v} for k, v in as_json(pos).items()]}
    ci = f"{exp.attrs['ci']:.0%}"
    tables = []
    if "stage_label" in exp.coords:
        st = rows("stage", exp["stage_label"].values, "stage")
        payload["stages"] = as_json(st)
        tables.append((f"Emotion curve: mean sentiment (-1..1) per stage, {ci} interval", st))
    tables.append((f"Mean sentiment (-1..1) per touchpoint, {ci} interval", tp))
    tables.append((f"Sentiment along the journey (step), {ci} interval", pos))
    return payload, tables
