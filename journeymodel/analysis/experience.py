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
(:mod:`journeymodel.analysis.painpoints`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from journeymodel.data.journeys import CENSORED, CONVERSION, DROPOFF, JourneySet

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

START = "(start)"
#: Positions 1 .. MAX_POSITION - 1 on their own, the last bin holds MAX_POSITION and later.
MAX_POSITION = 20


def _moments(values: np.ndarray, group: np.ndarray, n_groups: int,
             weight: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per group: sum of weights ``sw``, of squared weights ``sw2``, weighted ``mean`` and sum
    of weighted squared deviations ``ss`` of the finite values (numpy only)."""
    values = np.asarray(values, np.float64)
    group = np.asarray(group)
    ok = np.isfinite(values) & (group >= 0)
    g, x = group[ok], values[ok]
    if weight is None:
        w = None
        sw = np.bincount(g, minlength=n_groups).astype(np.float64)
        sw2 = sw
        sx = np.bincount(g, x, n_groups)
    else:
        w = np.asarray(weight, np.float64)[ok]
        pos = w > 0
        g, x, w = g[pos], x[pos], w[pos]
        sw = np.bincount(g, w, n_groups)
        sw2 = np.bincount(g, w * w, n_groups)
        sx = np.bincount(g, w * x, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sx / sw
    dev = x - mean[g]
    ss = np.bincount(g, dev * dev if w is None else w * dev * dev, n_groups)
    return {"sw": sw, "sw2": sw2, "mean": mean, "ss": ss}


def _interval(m: dict[str, np.ndarray] | None, n_groups: int,
              ci: float) -> dict[str, np.ndarray]:
    """``scored``, ``mean``, ``low``, ``high`` from :func:`_moments` (all NaN / 0 for None)."""
    if m is None:
        nan = np.full(n_groups, np.nan)
        return {"scored": np.zeros(n_groups), "mean": nan, "low": nan.copy(),
                "high": nan.copy()}
    from scipy import stats

    sw, sw2, mean, ss = m["sw"], m["sw2"], m["mean"], m["ss"]
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = sw * sw / sw2
        var = ss / (sw - sw2 / sw)  # unbiased for reliability weights; ss / (n - 1) when w = 1
        half = stats.t.ppf(0.5 + ci / 2, np.maximum(n_eff - 1, 1e-12)) * np.sqrt(var / n_eff)
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
    return _interval(_moments(values, group, n_groups, weight), n_groups, ci)


def _arrivals(journeys: JourneySet):
    """Per event: journey, step in the journey, previous code (-1 at the start), whether what
    follows is known, whether it is a drop-off, whether the journey converted (compact
    dtypes: these arrays are as long as the log)."""
    n, lengths = journeys.n_journeys, journeys.lengths
    idx = np.int32 if max(n, journeys.n_events) < 2**31 else np.int64
    jid = np.repeat(np.arange(n, dtype=idx), lengths)
    pos = np.arange(journeys.n_events, dtype=idx)
    pos -= np.repeat(journeys.offsets[:-1].astype(idx), lengths)
    prev = np.empty(journeys.n_events, np.int32)
    prev[1:] = journeys.codes[:-1]
    prev[pos == 0] = -1
    outcome = journeys.outcome[jid]
    last = pos == (lengths.astype(idx) - 1)[jid]
    known = ~(last & (outcome == CENSORED))
    dropped = last & (outcome == DROPOFF)
    converted = outcome == CONVERSION
    return jid, pos, prev, known, dropped, converted


def _distinct_journeys(jid: np.ndarray, group: np.ndarray, n_journeys: int,
                       n_groups: int) -> np.ndarray:
    """Number of distinct journeys per group among (journey, group) pairs (a bitmap when it
    fits in 64 MB, else a sort)."""
    if n_journeys * n_groups <= 64_000_000:
        seen = np.zeros(n_journeys * n_groups, bool)
        seen[jid.astype(np.int64) * n_groups + group] = True
        return seen.reshape(n_journeys, n_groups).sum(axis=0)
    pairs = np.unique(jid.astype(np.int64) * n_groups + group)
    return np.bincount(pairs % n_groups, minlength=n_groups)


#: Pair keys up to this many (or twice the events) are counted in dense arrays; beyond it, on
#: the unique keys that occur (50,000 touchpoints make 2.5e9 possible pairs: 18.6 GiB dense).
DENSE_KEYS = 1 << 20


def _dense(n_keys: int, n_events: int) -> bool:
    return n_keys <= max(DENSE_KEYS, 2 * n_events)


def _pair_counts(key, n_keys, known, dropped, converted, w):
    """Arrivals, drop-offs and conversions per pair key (only keys seen among known ones);
    ``w`` None means unit weights (integer counting, no weight arrays).

    Returns ``(seen, n, d, c)``: the sorted keys with arrivals and their counts. Memory grows
    with the events and the pairs that occur, not with ``n_keys`` (the square of the alphabet):
    above :data:`DENSE_KEYS` the keys are counted on their unique values.
    """
    k = known & (key >= 0)
    kk = key[k]
    if not _dense(n_keys, len(key)):
        seen, inv = np.unique(kk, return_inverse=True)
        m = len(seen)
        wk = np.ones(len(kk)) if w is None else w[k]
        n = np.bincount(inv, wk, m)
        d = np.bincount(inv, wk * dropped[k], m)
        c = np.bincount(inv, wk * converted[k], m)
        pos = n > 0
        return seen[pos], n[pos], d[pos], c[pos]
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


def _index_of(seen: np.ndarray, key: np.ndarray, n_keys: int) -> np.ndarray:
    """Position of each ``key`` in the sorted ``seen`` keys, -1 where absent (a lookup table
    when the key space is small, else a binary search: no array of size ``n_keys``)."""
    if _dense(n_keys, len(key)):
        inverse = np.full(n_keys, -1, np.int64)
        inverse[seen] = np.arange(len(seen))
        return inverse[key]
    if len(seen) == 0:
        return np.full(len(key), -1, np.int64)
    pos = np.minimum(np.searchsorted(seen, key), len(seen) - 1)
    return np.where(seen[pos] == key, pos, -1)


def experience_counts(journeys: JourneySet, *, stage_posterior: np.ndarray | None = None,
                      stage_names: list[str] | None = None) -> dict:
    """The counting half of :func:`journey_experience`: numpy only, no xarray or scipy import
    (a Markov fit keeps these and builds the dataset only when it is asked for or saved)."""
    names = np.asarray(journeys.touchpoints, dtype=object)
    T = len(names)
    jid, pos, prev, known, dropped, converted = _arrivals(journeys)
    codes = journeys.codes
    unit = bool(np.all(journeys.weight == 1.0))
    w = None if unit else journeys.weight[jid]
    sent = journeys.sentiment
    has_sentiment = sent is not None and bool(np.isfinite(sent).any())
    out: dict = {"T": T, "names": names, "n_events": int(journeys.n_events),
                 "has_sentiment": has_sentiment}
    out["tp_events"] = (np.bincount(codes, minlength=T).astype(np.float64) if unit
                        else np.bincount(codes, w, T))
    key = (prev.astype(np.int64) + 1) * T + codes
    out["pairs"] = _pair_counts(key, (T + 1) * T, known, dropped, converted, w)
    seen = out["pairs"][0]
    if has_sentiment:
        scored = np.isfinite(sent)
        out["scored_events"] = int(scored.sum())
        out["tp"] = _moments(sent, codes, T, w)
        out["tp_journeys"] = _distinct_journeys(jid[scored], codes[scored],
                                                journeys.n_journeys, T)
        out["pos"] = _moments(sent, np.minimum(pos, MAX_POSITION - 1), MAX_POSITION, w)
        out["pair"] = _moments(sent, _index_of(seen, key, (T + 1) * T), len(seen), w)
        out["overall"] = _moments(sent, np.zeros(len(sent), np.int8), 1, w)
    devices = np.asarray(journeys.devices, dtype=object)
    out["devices"] = devices
    out["has_device"] = journeys.device is not None and bool((journeys.device >= 0).any())
    if out["has_device"]:
        D = len(devices)
        dev = journeys.device.astype(np.int64)
        pdev = np.empty_like(dev)
        pdev[1:] = dev[:-1]
        pdev[pos == 0] = -1
        dkey = np.where((dev >= 0) & (pdev >= 0), pdev * D + dev, -1)
        out["dpairs"] = _pair_counts(dkey, D * D, known, dropped, converted, w)
    if stage_posterior is not None:
        K = stage_posterior.shape[1]
        wj = np.ones(journeys.n_events) if w is None else w
        out["K"] = K
        out["stage_names"] = list(stage_names or [f"S{k + 1}" for k in range(K)])
        out["stage_events"] = (wj[:, None] * stage_posterior).sum(axis=0)
        if has_sentiment:
            zero = np.zeros(len(sent), np.int8)
            out["stage"] = [_moments(sent, zero, 1, wj * stage_posterior[:, k])
                            for k in range(K)]
            top = np.argmax(stage_posterior, axis=1)
            out["stage_journeys"] = _distinct_journeys(jid[scored], top[scored],
                                                       journeys.n_journeys, K)
    return out


def experience_dataset(counts: dict, ci: float = 0.94) -> xr.Dataset:
    """The labelled dataset of :func:`journey_experience` from :func:`experience_counts`."""
    import xarray as xr

    T, names = counts["T"], counts["names"]
    has = counts["has_sentiment"]
    seen, n, d, c = counts["pairs"]
    from_names = np.concatenate([[START], names])
    tp = _interval(counts.get("tp"), T, ci)
    ps = _interval(counts.get("pos"), MAX_POSITION, ci)
    pair_sent = _interval(counts.get("pair"), len(seen), ci)
    data = {
        **{f"tp_{k}": ("channel", v) for k, v in tp.items()},
        "tp_events": ("channel", counts["tp_events"]),
        "tp_journeys": ("channel", np.asarray(counts.get("tp_journeys", np.zeros(T)),
                                              np.int64)),
        **{f"pos_{k}": ("position", v) for k, v in ps.items()},
        "pair_from": ("pair", from_names[seen // T].astype(str)),
        "pair_to": ("pair", names[seen % T].astype(str)),
        "pair_n": ("pair", n), "pair_dropped": ("pair", d), "pair_converted": ("pair", c),
        **{f"pair_{k}": ("pair", v) for k, v in pair_sent.items()},
    }
    coords = {"channel": names.astype(str), "position": np.arange(1, MAX_POSITION + 1)}
    devices = counts["devices"]
    D = max(len(devices), 1)
    if counts["has_device"]:
        dseen, dn, dd, dc = counts["dpairs"]
    else:
        dseen, dn, dd, dc = (np.zeros(0, np.int64),) + (np.zeros(0),) * 3
    data.update({"dpair_from": ("device_pair", devices[dseen // D].astype(str)),
                 "dpair_to": ("device_pair", devices[dseen % D].astype(str)),
                 "dpair_n": ("device_pair", dn), "dpair_dropped": ("device_pair", dd),
                 "dpair_converted": ("device_pair", dc)})
    if "K" in counts:
        K = counts["K"]
        parts = ([_interval(m, 1, ci) for m in counts["stage"]] if has
                 else [_interval(None, 1, ci)] * K)
        for k in ("scored", "mean", "low", "high"):
            data[f"stage_{k}"] = ("stage_label", np.array([p[k][0] for p in parts]))
        data["stage_events"] = ("stage_label", counts["stage_events"])
        data["stage_journeys"] = ("stage_label", np.asarray(
            counts.get("stage_journeys", np.zeros(K)), np.int64))
        coords["stage_label"] = counts["stage_names"]
    overall = _interval(counts.get("overall"), 1, ci)
    attrs = {"sentiment_mean": float(overall["mean"][0]),
             "sentiment_low": float(overall["low"][0]),
             "sentiment_high": float(overall["high"][0]),
             "scored_events": int(counts.get("scored_events", 0)),
             "events": counts["n_events"], "has_sentiment": int(has),
             "has_device": int(counts["has_device"]), "ci": float(ci)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


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
