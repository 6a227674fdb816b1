"""A journey process with KNOWN transition, drop-off and holding-time parameters, for the tests of
holding times and of censoring (issue 17): an order-1 chain over three touchpoints (no
self-loops, so ``collapse_repeats`` changes nothing), gamma holding times per (touchpoint,
next event), one journey per customer, starts uniform over ``span`` days; the log can be cut at
any day (rows after it removed, ``observed_until`` = the cut), which leaves the journeys still
going at that day in flight."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeymodel.data.journeys import load_journeys

TOUCHPOINTS = ("a_web", "b_email", "c_call")
TARGETS = TOUCHPOINTS + ("conversion", "dropoff")
START = np.array([0.5, 0.3, 0.2])
#: P(next | touchpoint): columns a_web, b_email, c_call, conversion, dropoff (rows sum to 1).
P = np.array([[0.0, 0.45, 0.2, 0.15, 0.2],
              [0.35, 0.0, 0.25, 0.3, 0.1],
              [0.3, 0.2, 0.0, 0.4, 0.1]])
#: The same process where each touchpoint may repeat (collapsed into one state by default).
P_REPEATS = np.array([[0.3, 0.3, 0.14, 0.12, 0.14],
                      [0.35, 0.2, 0.15, 0.2, 0.1],
                      [0.2, 0.2, 0.2, 0.3, 0.1]])
#: Gamma (shape, mean in days) of the holding time from each touchpoint to each next event.
SHAPE = np.array([[1.0, 0.7, 2.0, 3.0],
                  [1.5, 1.0, 0.8, 2.0],
                  [2.5, 1.2, 1.0, 4.0]])
MEAN_DAYS = np.array([[1.0, 2.0, 3.0, 1.5],
                      [2.5, 1.0, 1.5, 0.5],
                      [1.0, 3.0, 1.0, 2.0]])
GAP_DAYS = 14.0
DAY = 86400.0
T0 = pd.Timestamp("2025-01-01", tz="UTC")


@dataclass
class Log:
    events: pd.DataFrame
    observed_until: pd.Timestamp


def simulate(n: int, seed: int, span: float = 200.0, p: np.ndarray = P) -> pd.DataFrame:
    """Every event of ``n`` complete journeys (times in days since T0), steps drawn at once;
    ``p`` replaces :data:`P` (e.g. with self-loops)."""
    rng = np.random.default_rng(seed)
    cur = rng.choice(3, n, p=START)
    now = rng.random(n) * span
    cust = np.arange(n)
    rows = [(cust, now.copy(), cur.copy())]
    active = np.arange(n)
    while len(active):  # loop over steps; every active journey moves at once
        s = cur[active]
        u = rng.random(len(active))[:, None]
        nxt = (u > np.cumsum(p[s], axis=1)).sum(axis=1)
        move = nxt < 4  # a touchpoint or the conversion
        a, s, nxt = active[move], s[move], nxt[move]
        hold = rng.gamma(SHAPE[s, nxt], MEAN_DAYS[s, nxt] / SHAPE[s, nxt])
        hold = np.minimum(hold, 0.999 * GAP_DAYS)  # P(hold > gap) is ~1e-6 anyway
        now[a] += hold
        rows.append((a, now[a].copy(), nxt))
        cur[a] = nxt
        active = a[nxt < 3]
    c, t, k = (np.concatenate(x) for x in zip(*rows, strict=True))
    frame = pd.DataFrame({"customer_id": np.char.add("c", c.astype(str)), "day": t,
                          "touchpoint": np.asarray(TARGETS, dtype=object)[k]})
    return frame.sort_values(["customer_id", "day"], kind="stable").reset_index(drop=True)


def cut(frame: pd.DataFrame, day: float) -> Log:
    """The log as seen at ``day``: rows after it removed, observation ending there."""
    kept = frame[frame["day"] <= day]
    events = pd.DataFrame({"customer_id": kept["customer_id"].to_numpy(),
                           "timestamp": T0 + pd.to_timedelta(kept["day"].to_numpy() * DAY,
                                                             unit="s"),
                           "touchpoint": kept["touchpoint"].to_numpy()})
    return Log(events, T0 + pd.Timedelta(days=day))


def journeys(log: Log):
    return load_journeys(log.events, gap=f"{GAP_DAYS}D",
                         observed_until=log.observed_until.isoformat())


def cut_for_share(frame: pd.DataFrame, share: float, span: float = 200.0) -> float:
    """A cut day leaving about ``share`` of the journeys started by then in flight (0: after
    everything has ended)."""
    if share == 0:
        return float(frame["day"].max()) + 2 * GAP_DAYS
    g = frame.groupby("customer_id")
    first, last = g["day"].min().to_numpy(), g["day"].max().to_numpy()
    converted = (g["touchpoint"].last() == "conversion").to_numpy()
    days = np.linspace(GAP_DAYS + 5, span, 400)[:, None]
    started = first[None, :] <= days
    open_ = started & ((last[None, :] > days) | (~converted[None, :]
                                                  & (last[None, :] + GAP_DAYS >= days)))
    share_at = open_.sum(axis=1) / started.sum(axis=1)
    return float(days[np.argmin(np.abs(share_at - share)), 0])
