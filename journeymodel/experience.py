"""The customer's experience along journeys: emotion curves and what follows each switch.

Computed once at fit time from the journeys' events (vectorised, no loop over events or
journeys) and stored in the model file as the ``experience`` group, so that
``journeymodel pain-points`` and the report need only the model file.

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
(:mod:`journeymodel.painpoints`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from journeymodel.journeys import CENSORED, CONVERSION, DROPOFF, JourneySet

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

START = "(start)"
#: Positions 1 .. MAX_POSITION - 1 on their own, the last bin holds MAX_POSITION and later.
MAX_POSITION = 20


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
    from scipy import stats

    values = np.asarray(values, np.float64)
    group = np.asarray(group, np.int64)
    ok = np.isfinite(values) & (group >= 0)
    w = np.ones(int(ok.sum())) if weight is None else np.asarray(weight, np.float64)[ok]
    g, x = group[ok], values[ok]
    ok_w = w > 0
    g, x, w = g[ok_w], x[ok_w], w[ok_w]
    sw = np.bincount(g, w, n_groups)
    sw2 = np.bincount(g, w * w, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, w * x, n_groups) / sw
        dev = x - mean[g]
        ss = np.bincount(g, w * dev * dev, n_groups)
        n_eff = sw * sw / sw2
        var = ss / (sw - sw2 / sw)  # unbiased for reliability weights; ss / (n - 1) when w = 1
        half = stats.t.ppf(0.5 + ci / 2, np.maximum(n_eff - 1, 1e-12)) * np.sqrt(var / n_eff)
    half = np.where(n_eff > 1 + 1e-9, half, np.nan)
    return {"scored": sw, "mean": mean, "low": mean - half, "high": mean + half}


def _arrivals(journeys: JourneySet):
    """Per event: previous code (-1 at the start), whether what follows is known, dropped,
    whether its journey converted, and its journey weight."""
    lengths = journeys.lengths
    jid = journeys.journey_of_event
    pos = np.arange(journeys.n_events) - journeys.offsets[:-1][jid]
    first = pos == 0
    prev = np.empty(journeys.n_events, np.int64)
    prev[1:] = journeys.codes[:-1]
    prev[first] = -1
    last = pos == lengths[jid] - 1
    outcome = journeys.outcome[jid]
    known = ~(last & (outcome == CENSORED))
    dropped = last & (outcome == DROPOFF)
    converted = outcome == CONVERSION
    return jid, pos, first, prev, known, dropped, converted, journeys.weight[jid]


def _distinct_journeys(jid: np.ndarray, group: np.ndarray, n_journeys: int,
                       n_groups: int) -> np.ndarray:
    """Number of distinct journeys per group among (journey, group) pairs (a bitmap when it
    fits in 64 MB, else a sort)."""
    if n_journeys * n_groups <= 64_000_000:
        seen = np.zeros(n_journeys * n_groups, bool)
        seen[jid * n_groups + group] = True
        return seen.reshape(n_journeys, n_groups).sum(axis=0)
    pairs = np.unique(jid.astype(np.int64) * n_groups + group)
    return np.bincount(pairs % n_groups, minlength=n_groups)


def _pair_counts(key, n_keys, known, dropped, converted, w):
    """Arrivals, drop-offs and conversions per pair key (only keys seen among known ones);
    ``w`` None means unit weights (integer counting, no weight arrays)."""
    k = known & (key >= 0)
    kk = key[k]
    if w is None:
        n = np.bincount(kk, minlength=n_keys).astype(np.float64)
        d = np.bincount(kk[dropped[k]], minlength=n_keys).astype(np.float64)
        c = np.bincount(kk[converted[k]], minlength=n_keys).astype(np.float64)
    else:
        wk = w[k]
        n = np.bincount(kk, wk, n_keys)
        d = np.bincount(kk, wk * dropped[k], n_keys)
        c = np.bincount(kk, wk * converted[k], n_keys)
    seen = np.flatnonzero(n > 0)
    return seen, n[seen], d[seen], c[seen]


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
        ``pos_*``. Per channel ``pair`` (from, to;
        from ``(start)`` for first touchpoints): ``pair_from``, ``pair_to``, ``pair_n``
        (arrivals with a known sequel), ``pair_dropped``, ``pair_converted`` and the sentiment
        of the arrival (``pair_scored``, ``pair_mean``, ``pair_low``, ``pair_high``). Per
        ``device_pair``: ``dpair_from``, ``dpair_to``, ``dpair_n``, ``dpair_dropped``,
        ``dpair_converted``. With ``stage_posterior``, per ``stage_label``: ``stage_*``
        (sentiment) and ``stage_events`` (expected touchpoints in the stage). Attributes:
        overall ``sentiment_mean`` / ``sentiment_low`` / ``sentiment_high``, ``scored_events``,
        ``events``, ``has_sentiment``, ``has_device``, ``ci``.
    """
    import xarray as xr

    names = np.asarray(journeys.touchpoints, dtype=object)
    T = len(names)
    jid, pos, _, prev, known, dropped, converted, w = _arrivals(journeys)
    codes = journeys.codes.astype(np.int64)
    sent = (journeys.sentiment if journeys.sentiment is not None
            else np.full(journeys.n_events, np.nan))
    scored = np.isfinite(sent)

    tp = mean_interval(sent, codes, T, w, ci)
    tp_events = np.bincount(codes, w, T)
    tp_journeys = _distinct_journeys(jid[scored], codes[scored], journeys.n_journeys, T)
    position = np.minimum(pos, MAX_POSITION - 1)
    ps = mean_interval(sent, position, MAX_POSITION, w, ci)

    key = (prev + 1) * T + codes
    unit = None if np.all(journeys.weight == 1.0) else w
    seen, n, d, c = _pair_counts(key, (T + 1) * T, known, dropped, converted, unit)
    inverse = np.full((T + 1) * T, -1, np.int64)
    inverse[seen] = np.arange(len(seen))
    pair_sent = mean_interval(sent, inverse[key], len(seen), w, ci)
    from_names = np.concatenate([[START], names])

    data = {
        **{f"tp_{k}": ("channel", v) for k, v in tp.items()},
        "tp_events": ("channel", tp_events),
        "tp_journeys": ("channel", tp_journeys.astype(np.int64)),
        **{f"pos_{k}": ("position", v) for k, v in ps.items()},
        "pair_from": ("pair", from_names[seen // T].astype(str)),
        "pair_to": ("pair", names[seen % T].astype(str)),
        "pair_n": ("pair", n), "pair_dropped": ("pair", d), "pair_converted": ("pair", c),
        **{f"pair_{k}": ("pair", v) for k, v in pair_sent.items()},
    }
    coords = {"channel": names.astype(str), "position": np.arange(1, MAX_POSITION + 1)}

    has_device = journeys.device is not None and bool((journeys.device >= 0).any())
    devices = np.asarray(journeys.devices, dtype=object)
    D = len(devices)
    if has_device:
        dev = journeys.device.astype(np.int64)
        pdev = np.empty_like(dev)
        pdev[1:] = dev[:-1]
        pdev[pos == 0] = -1
        dkey = np.where((dev >= 0) & (pdev >= 0), pdev * D + dev, -1)
        dseen, dn, dd, dc = _pair_counts(dkey, D * D, known, dropped, converted, unit)
    else:
        dseen, dn, dd, dc = (np.zeros(0, np.int64),) + (np.zeros(0),) * 3
    data.update({"dpair_from": ("device_pair", devices[dseen // max(D, 1)].astype(str)),
                 "dpair_to": ("device_pair", devices[dseen % max(D, 1)].astype(str)),
                 "dpair_n": ("device_pair", dn), "dpair_dropped": ("device_pair", dd),
                 "dpair_converted": ("device_pair", dc)})

    if stage_posterior is not None:
        K = stage_posterior.shape[1]
        parts = [mean_interval(sent, np.zeros(len(sent), np.int64), 1,
                               w * stage_posterior[:, k], ci) for k in range(K)]
        for k in ("scored", "mean", "low", "high"):
            data[f"stage_{k}"] = ("stage_label", np.array([p[k][0] for p in parts]))
        data["stage_events"] = ("stage_label", (w[:, None] * stage_posterior).sum(axis=0))
        top = np.argmax(stage_posterior, axis=1)
        data["stage_journeys"] = ("stage_label", _distinct_journeys(
            jid[scored], top[scored], journeys.n_journeys, K).astype(np.int64))
        coords["stage_label"] = list(stage_names or [f"S{k + 1}" for k in range(K)])

    overall = mean_interval(sent, np.zeros(len(sent), np.int64), 1, w, ci)
    attrs = {"sentiment_mean": float(overall["mean"][0]),
             "sentiment_low": float(overall["low"][0]),
             "sentiment_high": float(overall["high"][0]),
             "scored_events": int(scored.sum()), "events": int(journeys.n_events),
             "has_sentiment": int(scored.any()), "has_device": int(has_device), "ci": float(ci)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def emotion_summary(exp: xr.Dataset | None) -> tuple[dict | None, list]:
    """The emotion curve of a model for ``inspect``: JSON and tables (None, [] without data).

    JSON: ``{"average": {"mean", "low", "high"}, "scored_events", "events", "stages": {name:
    {"mean", "low", "high", "scored"}}, "touchpoints": {...}, "position": [{"position", ...}]}``
    (sentiment on -1..1; ``stages`` only for a stages model).
    """
    import pandas as pd

    if exp is None or not exp.attrs.get("has_sentiment", 0):
        return None, []

    def rows(prefix, labels):
        frame = pd.DataFrame({"mean": exp[f"{prefix}_mean"].values,
                              "low": exp[f"{prefix}_low"].values,
                              "high": exp[f"{prefix}_high"].values,
                              "scored": exp[f"{prefix}_scored"].values},
                             index=pd.Index([str(x) for x in labels]))
        return frame[frame["scored"] > 0]

    def as_json(frame):
        return {k: {c: (None if not np.isfinite(v) else float(v)) for c, v in row.items()}
                for k, row in frame.to_dict(orient="index").items()}

    tp = rows("tp", exp["channel"].values)
    pos = rows("pos", [f"{p}" if p < MAX_POSITION else f"{p}+" for p in
                       exp["position"].values])
    payload: dict = {
        "average": {"mean": exp.attrs["sentiment_mean"], "low": exp.attrs["sentiment_low"],
                    "high": exp.attrs["sentiment_high"]},
        "scored_events": int(exp.attrs["scored_events"]), "events": int(exp.attrs["events"]),
        "touchpoints": as_json(tp),
        "position": [{"position": k, **v} for k, v in as_json(pos).items()]}
    ci = f"{exp.attrs['ci']:.0%}"
    tables = []
    if "stage_label" in exp.coords:
        st = rows("stage", exp["stage_label"].values)
        payload["stages"] = as_json(st)
        tables.append((f"Emotion curve: mean sentiment (-1..1) per stage, {ci} interval",
                       st.rename_axis("stage")))
    tables.append((f"Mean sentiment (-1..1) per touchpoint, {ci} interval",
                   tp.rename_axis("touchpoint")))
    tables.append((f"Sentiment along the journey (step), {ci} interval",
                   pos.rename_axis("step")))
    return payload, tables
