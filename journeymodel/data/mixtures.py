"""Customers drawn from a known mixture of journey processes: data with true segments.

Each segment is a persona with its own absorbing Markov chain over touchpoints: where journeys
start, which touchpoint follows which, and how a journey ends after each touchpoint (continue,
conversion, churn, drop-off). Every customer belongs to one segment and makes several journeys,
all drawn from that segment's chain; journeys are spaced by more than the default 30-day gap, so
reading the log back cuts the same journeys (a drop-off is a journey followed by a quiet spell).
A churn ends the customer.

Segments are as different as personas when ``separation=1`` (each prefers a few touchpoints of
its own and converts at its own rate) and identical when ``separation=0`` (every parameter is a
blend ``(1 - separation) * shared + separation * own``), so recovery can be measured as segments
become alike; ``journeys_per_customer`` sets how much evidence each customer carries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeymodel.errors import OptionError

#: Touchpoint names of the generated logs (the first ``n_touchpoints``).
TOUCHPOINTS = ("web", "email", "app", "store", "call", "social", "ad", "chat", "sms", "partner")
DAY = 86_400.0
#: Longest generated journey (touchpoints); a longer one is cut and ends as a drop-off.
MAX_STEPS = 40


@dataclass(frozen=True)
class MixtureTruth:
    """The generating mixture.

    Attributes
    ----------
    touchpoints : tuple of str
    shares : ndarray, shape (K,)
        Share of customers in each segment (decreasing: segment 0 is the largest).
    start : ndarray, shape (K, M)
        First touchpoint of a journey.
    transition : ndarray, shape (K, M, M)
        Next touchpoint, given the journey continues.
    exit : ndarray, shape (K, M, 4)
        After a touchpoint: continue, conversion, churn, drop-off.
    """

    touchpoints: tuple[str, ...]
    shares: np.ndarray
    start: np.ndarray
    transition: np.ndarray
    exit: np.ndarray

    @property
    def n_segments(self) -> int:
        return len(self.shares)


@dataclass(frozen=True)
class MixtureData:
    """A generated log and its truth.

    Attributes
    ----------
    events : DataFrame
        ``customer_id``, ``timestamp`` (UTC), ``touchpoint`` (``conversion`` and ``churn`` rows
        end journeys), sorted by customer and time.
    segments : DataFrame
        ``customer_id`` and ``segment`` (0..K-1): the true segment of every customer.
    truth : MixtureTruth
    """

    events: pd.DataFrame
    segments: pd.DataFrame
    truth: MixtureTruth


def mixture_truth(n_segments: int = 3, *, n_touchpoints: int = 6, separation: float = 1.0,
                  seed: int | np.random.Generator = 0) -> MixtureTruth:
    """Draw K persona-like chains and blend them toward a shared one by ``1 - separation``.

    Each persona has two home touchpoints of its own (different personas' homes differ while
    there are touchpoints enough) that take 85% of its preference, the rest spread by a
    Dirichlet(1); it starts journeys and moves by that preference with some stickiness and has
    its own conversion propensity (7% to 30% per step); the shared chain is the average persona.
    """
    if not 1 <= int(n_segments) <= 20 or not 2 <= int(n_touchpoints) <= len(TOUCHPOINTS):
        raise OptionError(f"n_segments must be in 1..20 and n_touchpoints in 2.."
                          f"{len(TOUCHPOINTS)} (got {n_segments}, {n_touchpoints})")
    if not 0.0 <= float(separation) <= 1.0:
        raise OptionError(f"separation must be between 0 and 1 (got {separation})")
    rng = np.random.default_rng(seed)
    K, M, s = int(n_segments), int(n_touchpoints), float(separation)
    home = rng.permutation(M)[np.arange(2 * K).reshape(K, 2) % M]
    split_ = rng.uniform(0.35, 0.65, size=K)
    pref = 0.15 * rng.dirichlet(np.ones(M), size=K)
    np.add.at(pref, (np.arange(K), home[:, 0]), 0.85 * split_)
    np.add.at(pref, (np.arange(K), home[:, 1]), 0.85 * (1 - split_))
    start = 0.9 * pref + 0.1 / M
    sticky = rng.uniform(0.1, 0.4, size=(K, 1, 1)) * np.eye(M)
    transition = sticky + (1 - sticky.sum(2, keepdims=True)) * (0.9 * pref[:, None, :]
                                                                + 0.1 / M)
    convert = rng.permutation(np.linspace(0.07, 0.30, K))[:, None] * rng.uniform(
        0.6, 1.4, size=(K, M))
    churn = rng.uniform(0.01, 0.05, size=(K, 1)) * np.ones((1, M))
    drop = rng.uniform(0.05, 0.12, size=(K, 1)) * np.ones((1, M))
    exit_ = np.stack([1 - convert - churn - drop, convert, churn, drop], axis=2)

    def blend(own):
        return (1 - s) * own.mean(axis=0, keepdims=True) + s * own

    shares = np.linspace(2.0, 1.0, K) if K > 1 else np.ones(1)
    return MixtureTruth(TOUCHPOINTS[:M], shares / shares.sum(), blend(start), blend(transition),
                        blend(exit_))


def _draw(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One category per row of ``p`` (rows sum to 1), vectorised."""
    u = rng.random(len(p))[:, None]
    return np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)


def _journeys(rng, truth: MixtureTruth, seg: np.ndarray):
    """Touchpoint steps of journeys of segments ``seg``: (journey, step, touchpoint) per step
    and the outcome (0 conversion, 1 churn, 2 drop-off) per journey; one step at a time."""
    n = len(seg)
    alive = np.arange(n)
    tp = _draw(rng, truth.start[seg])
    outcome = np.full(n, 2)
    rows_j, rows_t = [], []
    for _ in range(MAX_STEPS):
        rows_j.append(alive)
        rows_t.append(tp)
        ex = _draw(rng, truth.exit[seg[alive], tp])
        ended = ex > 0
        outcome[alive[ended]] = ex[ended] - 1
        alive, tp = alive[~ended], tp[~ended]
        if not len(alive):
            break
        tp = _draw(rng, truth.transition[seg[alive], tp])
    j, t = np.concatenate(rows_j), np.concatenate(rows_t)
    order = np.argsort(j, kind="stable")  # steps of a journey stay in order
    return j[order], t[order], outcome


def make_mixture_data(n_customers: int = 2000, n_segments: int = 3, *,
                      journeys_per_customer: float = 3.0, separation: float = 1.0,
                      n_touchpoints: int = 6, seed: int | np.random.Generator = 0,
                      start: str = "2025-01-01") -> MixtureData:
    """Simulate customers of a known mixture of journey processes (see the module docstring).

    Parameters
    ----------
    n_customers : int
    n_segments : int
        K true segments, shares decreasing from segment 0 (2:1 between the first and last).
    journeys_per_customer : float
        Mean journeys a customer plans (at least one: ``1 + Poisson(mean - 1)``); a churn ends
        the customer earlier.
    separation : float
        1: segments as different as personas; 0: all alike (see :func:`mixture_truth`).
    n_touchpoints : int
    seed : int or Generator
        Same seed, same data.
    start : str
        First day of the log (UTC).

    Returns
    -------
    MixtureData

    Raises
    ------
    OptionError
        A size or knob out of range.

    Examples
    --------
    >>> data = make_mixture_data(300, 3, seed=1)
    >>> list(data.events.columns), data.segments["segment"].nunique()
    (['customer_id', 'timestamp', 'touchpoint'], 3)
    >>> bool(data.events["touchpoint"].isin(["conversion", "churn"]).any())
    True
    """
    if int(n_customers) < 1 or not journeys_per_customer >= 1:
        raise OptionError(f"n_customers must be >= 1 and journeys_per_customer >= 1 "
                          f"(got {n_customers}, {journeys_per_customer})")
    rng = np.random.default_rng(seed)
    truth = mixture_truth(n_segments, n_touchpoints=n_touchpoints, separation=separation,
                          seed=rng)
    n = int(n_customers)
    segment = _draw(rng, np.tile(truth.shares, (n, 1)))
    planned = 1 + rng.poisson(journeys_per_customer - 1.0, size=n)
    cust = np.repeat(np.arange(n), planned)
    first_of = np.cumsum(planned) - planned  # each customer's first journey
    j, tp, outcome = _journeys(rng, truth, segment[cust])
    # a churn ends the customer: later journeys of that customer are not made
    nth = np.arange(len(cust)) - np.repeat(first_of, planned)
    churned_at = np.full(n, np.iinfo(np.int64).max)
    ch = outcome == 1
    np.minimum.at(churned_at, cust[ch], nth[ch])
    made = nth <= churned_at[cust]
    # times: steps 0.2-3 days apart; a journey starts 32-45 days after the previous one ended
    lengths = np.bincount(j, minlength=len(cust))
    cs = np.cumsum(rng.uniform(0.2, 3.0, size=len(j)) * DAY)
    within = cs - np.repeat(cs[np.cumsum(lengths) - lengths], lengths)
    span = np.zeros(len(cust))
    np.maximum.at(span, j, within)
    pause = rng.uniform(32, 45, size=len(cust)) * DAY + span
    before = np.cumsum(pause) - pause
    begin = (np.repeat(rng.uniform(0, 365, size=n) * DAY, planned) + before
             - np.repeat(before[first_of], planned))
    keep = made[j]
    step_time = begin[j] + within
    end_time = np.zeros(len(cust))
    np.maximum.at(end_time, j, step_time)
    ended = made & (outcome < 2)
    width = max(6, len(str(n - 1)))
    ids = np.array([f"C{i:0{width}d}" for i in range(n)], dtype=object)
    labels = np.array([*truth.touchpoints, "conversion", "churn"], dtype=object)
    who = np.concatenate([cust[j[keep]], cust[ended]])
    when = np.concatenate([step_time[keep], end_time[ended] + 0.5 * DAY])
    what = np.concatenate([tp[keep], len(truth.touchpoints) + outcome[ended]])
    order = np.lexsort((when, who))
    origin = pd.Timestamp(start, tz="UTC")
    events = pd.DataFrame({
        "customer_id": ids[who[order]],
        "timestamp": origin + pd.to_timedelta(np.round(when[order]), unit="s"),
        "touchpoint": labels[what[order]]})
    return MixtureData(events, pd.DataFrame({"customer_id": ids, "segment": segment}), truth)
