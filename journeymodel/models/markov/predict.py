"""Using a fitted Markov journey model: in-flight prediction, held-out scores, simulation.

Every function takes the fitted model (a ``MarkovJourneyModel``, typed here as its base class
:class:`~journeymodel.models.base.JourneyModel`: the model module imports this one, never the
other way round) and reads only its public fitted attributes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.data.journeyset import CENSORED, JourneySet
from journeymodel.models.base import JourneyModel, Result
from journeymodel.stats.transitions import state_sequences

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def _recode(model: JourneyModel, journeys: JourneySet) -> tuple[JourneySet, np.ndarray]:
    """Journeys in the model's touchpoint codes; mask of journeys with an unknown touchpoint."""
    names = model.journeys_.touchpoints
    index = {t: i for i, t in enumerate(names)}
    lut = np.array([index.get(t, -1) for t in journeys.touchpoints], np.int64)
    codes = lut[journeys.codes] if len(lut) else journeys.codes.astype(np.int64)
    bad_event = codes < 0
    bad = np.bincount(journeys.journey_of_event[bad_event], minlength=journeys.n_journeys) > 0
    codes = np.where(bad_event, 0, codes).astype(np.int32)
    return replace(journeys, codes=codes, touchpoints=names), bad


def state_of_journeys(model: JourneyModel, journeys: JourneySet) -> dict[str, np.ndarray]:
    """Where each journey stands now, and what the chain says about its future.

    A journey with at least ``order`` touchpoints is in the state of its last window. A shorter
    one (``l`` touchpoints, ``0 < l < order``) has not entered a full window yet: its future is
    the start state's next states that begin with its path, reweighted (the path itself, a
    complete short journey, ends next). A journey without touchpoints is at the start.

    A window never seen in training backs off to the lower order: the states that end with its
    last ``order - 1`` touchpoints, averaged with their visits as weights; if none, its last
    ``order - 2``, and so on down to its last touchpoint (issue 17; before, such journeys got
    NaN). Only a touchpoint the model does not know leaves a journey unknown.

    Returns
    -------
    dict of arrays, each of shape (n_journeys,) unless noted
        ``p_conversion``, ``expected_steps`` (transitions until absorption, the absorbing one
        included), ``next`` (n_journeys, n_touchpoints + n_absorbing) next-event distribution,
        ``known`` (bool; False for unknown touchpoints: values are NaN), ``backoff``
        (int: 0 for a seen state, else the number of last touchpoints the values were
        matched on).
    """
    js, bad = _recode(model, journeys)
    chain, order, base = model.chain_, model.order_, model.base_
    T, n, A = len(model.journeys_.touchpoints), chain.n, len(chain.absorbing)
    nxt_state = _next_event_matrix(model)  # (n, T + A)
    seq = state_sequences(js, order, model.collapse_repeats, base)
    L = js.lengths
    nj = js.n_journeys
    p = np.full(nj, np.nan)
    steps = np.full(nj, np.nan)
    nxt = np.full((nj, T + A), np.nan)
    known = np.zeros(nj, bool)
    full = (L >= order) & ~bad
    last_key = seq.keys[seq.offsets[1:][full] - 1]
    pos = np.clip(np.searchsorted(chain.keys, last_key), 0, n - 1)
    hit = chain.keys[pos] == last_key
    rows = np.flatnonzero(full)[hit]
    p[rows], steps[rows], nxt[rows] = (model.p_conversion_[pos[hit]],
                                       model.expected_steps_[pos[hit]], nxt_state[pos[hit]])
    known[rows] = True
    backoff = np.zeros(nj, np.int64)
    miss = np.flatnonzero(full)[~hit]
    if len(miss) and order > 1:
        vals, used = _back_off(model, last_key[~hit], nxt_state)
        got = used > 0
        r = miss[got]
        p[r], steps[r], nxt[r] = vals[0][got], vals[1][got], vals[2][got]
        known[r], backoff[r] = True, used[got]
    at_start = (L == 0) & ~bad
    p[at_start], steps[at_start], nxt[at_start] = (model.p_conversion_[0],
                                                   model.expected_steps_[0], nxt_state[0])
    known[at_start] = True
    part = np.flatnonzero((L > 0) & (L < order) & ~bad)
    if len(part):
        pk = seq.keys[seq.offsets[1:][part] - 1]  # the whole short path as a key
        table_keys, agg = _prefix_table(model, nxt_state)
        pos = np.clip(np.searchsorted(table_keys, pk), 0, max(len(table_keys) - 1, 0))
        hit = (table_keys[pos] == pk) if len(table_keys) else np.zeros(len(pk), bool)
        r = part[hit]
        p[r], steps[r], nxt[r] = agg[0][pos[hit]], agg[1][pos[hit]], agg[2][pos[hit]]
        known[r] = True
    return {"p_conversion": p, "expected_steps": steps, "next": nxt, "known": known,
            "backoff": backoff}


def _back_off(model: JourneyModel, keys: np.ndarray, nxt_state: np.ndarray):
    """Values of unseen full windows from the full windows sharing their last ``j``
    touchpoints (``j = order - 1, ..., 1``, the longest that matches), weighted by visits
    (short windows, whole journeys shorter than the order, only end: they are left out).

    Returns ((p_conversion, expected_steps, next) per key, j used per key (0: no match))."""
    chain, order, base = model.chain_, model.order_, model.base_
    counts = model.expected_counts_
    visits = np.bincount(np.searchsorted(chain.keys, counts.from_key), weights=counts.count,
                         minlength=chain.n)
    m = len(keys)
    p, steps = np.full(m, np.nan), np.full(m, np.nan)
    nxt = np.full((m, nxt_state.shape[1]), np.nan)
    used = np.zeros(m, np.int64)
    full = np.flatnonzero(chain.keys >= base ** (order - 1))  # full windows only
    for j in range(order - 1, 0, -1):  # loop over suffix lengths (at most 3)
        todo = np.flatnonzero(used == 0)
        if len(todo) == 0:
            break
        long_enough = full[visits[full] > 0]
        suffix = chain.keys[long_enough] % base**j
        uk, inv = np.unique(suffix, return_inverse=True)
        w = visits[long_enough]
        z = np.bincount(inv, weights=w, minlength=len(uk))
        agg_p = np.bincount(inv, weights=w * model.p_conversion_[long_enough],
                            minlength=len(uk)) / np.maximum(z, 1e-300)
        agg_s = np.bincount(inv, weights=w * model.expected_steps_[long_enough],
                            minlength=len(uk)) / np.maximum(z, 1e-300)
        agg_n = np.zeros((len(uk), nxt_state.shape[1]))
        np.add.at(agg_n, inv, nxt_state[long_enough] * w[:, None])
        agg_n /= np.maximum(z, 1e-300)[:, None]
        q = keys[todo] % base**j
        pos = np.clip(np.searchsorted(uk, q), 0, max(len(uk) - 1, 0))
        hit = (uk[pos] == q) if len(uk) else np.zeros(len(q), bool)
        t, k = todo[hit], pos[hit]
        p[t], steps[t], nxt[t], used[t] = agg_p[k], agg_s[k], agg_n[k], j
    return (p, steps, nxt), used


def _next_event_matrix(model: JourneyModel) -> np.ndarray:
    """Per transient state: distribution of the next touchpoint or outcome, (n, T + A)."""
    chain = model.chain_
    T, n = len(model.journeys_.touchpoints), chain.n
    p_row, p_col, p_data = chain.csr.rows(), chain.csr.indices, chain.p_data  # no scipy
    codes = model.state_codes_
    length = (codes >= 0).sum(axis=1)
    # the touchpoint a move emits: from the start, the first of the window; else the newest
    to_t = p_col < n
    col = np.empty(len(p_col), np.int64)
    tc = p_col[to_t]
    col[to_t] = np.where(p_row[to_t] == 0, codes[tc, 0],
                         codes[tc, np.maximum(length[tc] - 1, 0)])
    col[~to_t] = T + (p_col[~to_t] - n)
    out = np.zeros((n, T + len(chain.absorbing)))
    np.add.at(out, (p_row, col), p_data)
    return out


def _prefix_table(model: JourneyModel, nxt_state: np.ndarray):
    """For every path prefix shorter than the order: P(conversion), expected steps and the
    next-event distribution, over the start state's next states that begin with it."""
    chain, order, base = model.chain_, model.order_, model.base_
    T, n = len(model.journeys_.touchpoints), chain.n
    first = slice(chain.csr.indptr[0], chain.csr.indptr[1])  # the start state's row
    cols0, p0 = chain.csr.indices[first], chain.p_data[first]
    t, w = cols0[cols0 < n], p0[cols0 < n]
    codes = model.state_codes_[t]
    length = (codes >= 0).sum(axis=1)
    keys, ts, ws, nexts = [], [], [], []
    for ell in range(1, order):  # prefix lengths (loop over at most 3 lengths)
        ok = length >= ell
        key = np.zeros(int(ok.sum()), np.int64)
        for i in range(ell):
            key = key * base + codes[ok, i] + 1
        keys.append(key)
        ts.append(t[ok])
        ws.append(w[ok])
        same = length[ok] == ell
        nx = np.zeros((int(ok.sum()), nxt_state.shape[1]))
        nx[same] = nxt_state[t[ok][same]]  # the short path itself ends next
        nx[~same, codes[ok][~same, ell]] = 1.0
        nexts.append(nx)
    if not keys:
        return np.zeros(0, np.int64), (np.zeros(0), np.zeros(0), np.zeros((0, T)))
    key, tt, ww, nx = (np.concatenate(keys), np.concatenate(ts), np.concatenate(ws),
                       np.concatenate(nexts))
    uk, inv = np.unique(key, return_inverse=True)
    z = np.bincount(inv, weights=ww, minlength=len(uk))
    pc = np.bincount(inv, weights=ww * model.p_conversion_[tt], minlength=len(uk)) / z
    ends_here = chain.keys[tt] == key  # the short path itself: no further window to enter
    st = np.bincount(inv, weights=ww * (model.expected_steps_[tt] + ~ends_here),
                     minlength=len(uk)) / z
    nd = np.zeros((len(uk), nx.shape[1]))
    np.add.at(nd, inv, nx * ww[:, None])
    return uk, (pc, st, nd / z[:, None])


def predict_in_flight(model: JourneyModel, journeys: JourneySet) -> Result:
    """Predictions for every in-flight (censored) journey.

    ``Result.frame`` has one row per in-flight journey: ``customer_id``, ``state`` (its path,
    the last ``order`` touchpoints), ``n_touchpoints``, ``p_conversion``, ``expected_steps``
    (chain transitions until an outcome, the outcome included), ``next_<touchpoint>`` for every
    touchpoint and ``next_<outcome>`` for conversion, dropoff (and churn): the distribution of
    the next event (wide form). Journeys in a window the model never saw, or with a touchpoint
    it does not know, get NaN and are counted in the notes.
    """
    import pandas as pd

    flight = np.flatnonzero(journeys.outcome == CENSORED)
    sub = journeys.take(flight)
    res = state_of_journeys(model, sub)
    names = list(model.journeys_.touchpoints) + list(model.chain_.absorbing)
    cust = (sub.customers[sub.customer] if len(sub.customers) and (sub.customer >= 0).all()
            else np.arange(sub.n_journeys).astype(str))
    paths = sub.path_strings()
    frame = pd.DataFrame({"customer_id": cust, "state": _last_window(paths, model.order_),
                          "n_touchpoints": sub.lengths, "p_conversion": res["p_conversion"],
                          "expected_steps": res["expected_steps"]})
    nxt = pd.DataFrame(res["next"], columns=[f"next_{x}" for x in names])
    frame = pd.concat([frame, nxt], axis=1)
    unknown = int((~res["known"]).sum())
    backed = int((res["backoff"] > 0).sum())
    top = frame[["customer_id", "state", "p_conversion", "expected_steps"]].copy()
    best = np.nanargmax(np.where(np.isnan(res["next"]), -1, res["next"]), axis=1) if len(
        flight) else np.zeros(0, int)
    top["most_likely_next"] = np.where(res["known"], np.asarray(names, dtype=object)[best], "-")
    top["p_next"] = np.where(res["known"], np.nanmax(np.nan_to_num(res["next"], nan=-1),
                                                     axis=1) if len(flight) else 0, np.nan)
    top = top.sort_values("p_conversion", ascending=False, kind="stable")
    notes = [f"{len(flight)} in-flight journeys of {journeys.n_journeys}"]
    if backed:
        notes.append(f"{backed} in-flight journeys are in a window the model never saw: "
                     "their predictions back off to the states sharing their last touchpoints")
    if unknown:
        notes.append(f"{unknown} in-flight journeys have a touchpoint the model does not know "
                     "(or a path it never saw start): their predictions are NaN")
    js = {"n_in_flight": int(len(flight)), "n_unknown_state": unknown,
          "n_backed_off": backed,
          "mean_p_conversion": _nanmean(res["p_conversion"]),
          "predictions": frame.astype(object).where(frame.notna(), None).to_dict("records")}
    return Result(json=js, tables=[("In-flight journeys (highest P(conversion) first)",
                                    top.reset_index(drop=True))], frame=frame, notes=notes)


def _nanmean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else None


def _last_window(paths: np.ndarray, order: int) -> list[str]:
    return [" > ".join(p.split(" > ")[-order:]) if p else "(start)" for p in paths]


# ---------------------------------------------------------------------------------------------
# Simulation


def simulate_journeys(model: JourneyModel, n: int, *,
                      seed: int | np.random.Generator = 0, max_steps: int = 1000
                      ) -> pd.DataFrame:
    """Draw ``n`` journeys from the chain, in chunks of
    :data:`~journeymodel.models.simulate.CHUNK_JOURNEYS` journeys (each drawn by
    :func:`simulate_chunk` from one generator made from ``seed``), at most
    :data:`journeymodel.models.simulate.MAX_IN_MEMORY` (more: stream them to a file with
    :func:`journeymodel.models.simulate.simulate_to_file`).

    Returns
    -------
    DataFrame
        As :func:`simulate_chunk`, for customers ``sim1`` .. ``simN`` zero-padded to the width
        of ``n``.

    Raises
    ------
    OptionError
        ``n`` < 1 or above :data:`journeymodel.models.simulate.MAX_IN_MEMORY`.
    """
    from journeymodel.models.simulate import simulate_frame

    return simulate_frame(model, n, seed=seed, max_steps=max_steps)


def simulate_chunk(model: JourneyModel, n: int, rng: np.random.Generator, *,
                   offset: int = 0, n_total: int | None = None, max_steps: int = 1000
                   ) -> pd.DataFrame:
    """Draw ``n`` journeys from the chain, all active journeys stepped at once.

    Each journey is its own customer, numbered from ``offset + 1`` (``sim`` + the number
    zero-padded to the width of ``n_total``; see
    :func:`~journeymodel.models.simulate.simulated_ids`).
    Time: journeys start uniformly over
    the training journeys' start times; the time spent in a state is exponential with the
    state's fitted mean dwell (the overall mean where a state has none); the touchpoints of a
    first window of several touchpoints are spaced by the overall mean dwell. Without
    timestamps in the training data, times are step numbers (period numbers). Conversions and
    churns are outcome rows; a drop-off is a journey that just stops (read back as ``dropoff``
    once the data go on past the inactivity gap, else ``censored``, as for real data).
    Journeys still active after ``max_steps`` moves are cut off there.

    Returns
    -------
    DataFrame
        ``customer_id``, ``timestamp``, ``touchpoint`` (and ``value`` on conversion rows if the
        model saw conversion values), sorted by customer and time.
    """
    chain = model.chain_
    P, p_data = chain.csr, chain.p_data  # the mean transition rows (no scipy)
    N, T = chain.n, len(model.journeys_.touchpoints)
    codes = model.state_codes_
    length = (codes >= 0).sum(axis=1)
    timed = model.journeys_.time_kind != "none"
    dwell = model.mean_dwell_.copy()
    overall = float(np.nanmean(dwell)) if np.isfinite(dwell).any() else 1.0
    dwell = np.where(np.isfinite(dwell) & (dwell > 0), dwell, overall)
    row_of = np.repeat(np.arange(N), np.diff(P.indptr))
    cum = row_of + _row_cumsum(p_data, P.indptr)
    cur = np.zeros(n, np.int64)
    lo, hi = model.start_range_
    now = lo + rng.random(n) * (hi - lo) if timed else np.zeros(n)
    active = np.arange(n)
    ev_j, ev_t, ev_c, ev_v = [], [], [], []
    for _ in range(max_steps):  # loop over steps; every active journey moves at once
        if len(active) == 0:
            break
        s = cur[active]
        u = s + rng.random(len(active)) * (1 - 1e-12)
        nxt = P.indices[np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)]
        stay = rng.exponential(dwell[s]) if timed else np.ones(len(s))
        t_leave = np.where(s == 0, now[active], now[active] + stay)
        trans = nxt < N
        a_t, to = active[trans], nxt[trans]
        first = s[trans] == 0
        # emitted touchpoints: a whole first window from the start, else the newest touchpoint
        k = np.where(first, length[to], 1)
        j_rep = np.repeat(a_t, k)
        pos_in = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
        col = np.where(np.repeat(first, k), pos_in, np.repeat(length[to] - 1, k))
        c = codes[np.repeat(to, k), col]
        lead = np.repeat(k, k) - 1 - pos_in  # touchpoints before the window's entry time
        spacing = rng.exponential(overall, len(c)) if timed else np.ones(len(c))
        t_ev = np.repeat(t_leave[trans], k) - lead * spacing
        ev_j.append(j_rep), ev_t.append(t_ev), ev_c.append(c), ev_v.append(np.zeros(len(c)))
        absorbed = active[~trans]
        outcome = nxt[~trans] - N
        named = np.array([T + i for i in range(len(chain.absorbing))])[outcome]
        emit = np.isin(np.asarray(chain.absorbing)[outcome], ("conversion", "churn"))
        ev_j.append(absorbed[emit]), ev_t.append(t_leave[~trans][emit])
        ev_c.append(named[emit])
        ev_v.append(model.conversion_value_[s[~trans]][emit])
        now[a_t] = t_leave[trans]
        cur[a_t] = to
        active = a_t
    j, t, c = np.concatenate(ev_j), np.concatenate(ev_t), np.concatenate(ev_c)
    return _events_frame(model, j, t, c, np.concatenate(ev_v), n, offset, n_total)


def _row_cumsum(data: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Cumulative sum within each CSR row (vectorised)."""
    c = np.cumsum(data)
    counts = np.diff(indptr)
    before = np.repeat(np.concatenate([[0.0], c])[indptr[:-1]], counts)
    out = c - before
    ends = indptr[1:][counts > 0] - 1
    out[ends] = 1.0  # guard against rounding: each row ends exactly at 1
    return out


def _events_frame(model, j, t, c, v, n, offset, n_total) -> pd.DataFrame:
    import pandas as pd

    from journeymodel.models.simulate import simulated_ids

    names = np.asarray(list(model.journeys_.touchpoints) + list(model.chain_.absorbing),
                       dtype=object)
    order = np.lexsort((np.arange(len(j)), t, j))
    j, t, c, v = j[order], t[order], c[order], v[order]
    ids = simulated_ids(n, offset=offset, n_total=n_total)[j]
    kind = model.journeys_.time_kind
    if kind == "datetime":
        stamp = pd.to_datetime(np.round(t * 1e6).astype("int64"), unit="us", utc=True)
    else:
        stamp = t
    frame = pd.DataFrame({"customer_id": ids, "timestamp": stamp,
                          "touchpoint": names[c]})
    if model.total_value_ > 0:
        # conversion value: the mean value of conversions reached from the last state
        conv = c == len(model.journeys_.touchpoints)
        frame["value"] = np.where(conv, v, np.nan)
    return frame
