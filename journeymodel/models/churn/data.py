"""Churn likelihood data from per-customer summaries (numpy).

The summaries (:class:`~journeymodel.stats.customers.CustomerStats`: first event, first
conversion, first churn, transaction days per customer) add up over parts of a log; this module
reduces them to what each churn model's likelihood reads, three views of the same customers:

* :func:`lifetimes` - time from a customer's first event to its first churn event, right-censored
  at the end of observation (``weibull``); :func:`period_counts` turns them into per-period counts
  of churned and still-alive customers (``sbg``, whose likelihood then costs the same for 100 or
  100,000 customers).
* :func:`rfm` - frequency ``x``, recency ``t_x`` and age ``T`` per customer (``bgnbd``):
  transactions are conversion events, and several on the same day count once.

:func:`weibull_rows` and :func:`bgnbd_rows` then keep the distinct tuples with their counts
(:func:`compress`), so a likelihood's cost follows the number of distinct tuples, not of
customers.

Time units
----------
``D`` = 1 day, ``W`` = 7 days, ``M`` = 365.25 / 12 = 30.4375 days (an average calendar month),
``Y`` = 365.25 days. Logs with plain period numbers are measured in their own periods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeymodel.choices import CHURN_ORIGINS
from journeymodel.errors import InputError, OptionError
from journeymodel.stats.customers import DAY, CustomerStats

#: Length of each time unit in seconds (calendar timestamps).
UNIT_SECONDS = {"D": DAY, "W": 7 * DAY, "M": 365.25 / 12 * DAY, "Y": 365.25 * DAY}
#: Time unit used when none is given, by model (periods for logs of period numbers).
DEFAULT_UNIT = {"sbg": "M", "weibull": "M", "bgnbd": "W"}
UNKNOWN_PERSONA = "(unknown)"
ALL_PERSONAS = "all"


@dataclass(frozen=True)
class Customers:
    """One row per customer of a :class:`~journeymodel.stats.customers.CustomerStats`, in its
    order (arrays of shape (n_customers,)).

    Attributes
    ----------
    ids : ndarray of str
    persona : ndarray of int64
        Index into ``personas`` (customers without a persona get their own group).
    personas : tuple of str
    first : ndarray of float64
        Time of the first event (native time axis).
    churn : ndarray of float64
        Time of the first churn event, NaN where none.
    converted : ndarray of float64
        Time of the first conversion, NaN where none.
    """

    ids: np.ndarray
    persona: np.ndarray
    personas: tuple[str, ...]
    first: np.ndarray
    churn: np.ndarray
    converted: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def counts(self) -> np.ndarray:
        """Number of customers per persona, shape (n_personas,)."""
        return np.bincount(self.persona, minlength=len(self.personas))


def unit_length(time_kind: str, time_unit: str | None, model: str) -> tuple[str, float]:
    """The time unit's name and its length on the log's time axis.

    Raises
    ------
    OptionError
        Unknown unit, or a calendar unit given for a log of plain period numbers.
    """
    if time_kind == "none":
        raise InputError("churn models need event times; this input has none (a path table?)")
    if time_kind == "period":
        if time_unit not in (None, "period"):
            raise OptionError(
                f"--time-unit {time_unit} applies to calendar timestamps; this log has plain "
                "period numbers, which are the unit (leave --time-unit out)")
        return "period", 1.0
    unit = time_unit or DEFAULT_UNIT[model]
    if unit not in UNIT_SECONDS:
        raise OptionError(f"--time-unit must be one of D, W, M, Y (got {unit!r})")
    return unit, UNIT_SECONDS[unit]


def customers_of(stats: CustomerStats) -> Customers:
    """First event, first churn, first conversion and persona of every customer.

    Personas are numbered among those some customer has; customers without one form the group
    ``"(unknown)"``, and a log without personas is one group ``"all"``.

    Raises
    ------
    InputError
        No customers (an aggregated path table).
    """
    if not len(stats):
        raise InputError("churn models need customers and event times; this input has none "
                         "(an aggregated path table?)")
    code, personas = _persona_codes(stats.persona, tuple(stats.personas))
    return Customers(stats.ids, code, personas, stats.first, stats.first_churn,
                     stats.first_conversion)


def _persona_codes(persona: np.ndarray, names: tuple[str, ...]):
    if not names:
        return np.zeros(len(persona), np.int64), (ALL_PERSONAS,)
    code = persona.astype(np.int64)
    if (code < 0).any():
        code = np.where(code < 0, len(names), code)
        names = (*names, UNKNOWN_PERSONA)
    used = np.unique(code)
    remap = np.full(len(names), -1, np.int64)
    remap[used] = np.arange(len(used))
    return remap[code], tuple(names[i] for i in used)


#: Where a lifetime starts (:func:`resolve_origin`).
ORIGINS = CHURN_ORIGINS


def resolve_origin(origin: str, cust: Customers) -> str:
    """``auto`` is ``first_conversion`` when the log has conversions, else ``first_event``."""
    if origin not in ORIGINS:
        raise OptionError(f"origin must be one of {', '.join(ORIGINS)} (got {origin!r})")
    if origin == "auto":
        return "first_conversion" if np.isfinite(cust.converted).any() else "first_event"
    return origin


def lifetimes(cust: Customers, observed_until: float, unit: float, origin: str):
    """Observed lifetime of each customer at risk, in time units.

    A customer is at risk from its origin (first event, or first conversion: the moment it
    becomes a customer); customers who never reach it, or churn before it, are not at risk.

    Returns
    -------
    at_risk : ndarray of bool, shape (n_customers,)
    duration : ndarray of float64, shape (n_at_risk,)
        Origin to churn for churned customers, to ``observed_until`` otherwise.
    churned : ndarray of bool, shape (n_at_risk,)
    """
    start = cust.first if origin == "first_event" else cust.converted
    at_risk = np.isfinite(start) & ~(cust.churn < start)
    churned = np.isfinite(cust.churn[at_risk])
    stop = np.where(churned, cust.churn[at_risk], observed_until)
    return at_risk, np.maximum(stop - start[at_risk], 0.0) / unit, churned


def period_counts(duration: np.ndarray, churned: np.ndarray, persona: np.ndarray,
                  n_personas: int):
    """Per-period counts for the shifted-beta-geometric model.

    The sBG model lets customers leave only at renewals (period boundaries), so a churn event
    ``d`` units after the origin counts at the nearest renewal: ``T = max(1, round(d))``
    (robust to churn rows written a little after the renewal they missed, and to calendar
    months of 28-31 days). A customer still active after ``d`` units has made
    ``max(round(d) - 1, 0)`` renewals for sure (``T > max(round(d) - 1, 0)``).

    Returns
    -------
    lost : ndarray of float64, shape (n_personas, K)
        ``lost[p, t - 1]``: customers of persona ``p`` who churned in period ``t``.
    alive : ndarray of float64, shape (n_personas, K + 1)
        ``alive[p, t]``: customers of persona ``p`` last seen alive after ``t`` renewals.
    """
    r = np.rint(duration).astype(np.int64)
    t_lost = np.maximum(r, 1)[churned] - 1
    t_alive = np.maximum(r - 1, 0)[~churned]
    k = int(max(t_lost.max(initial=0) + 1, t_alive.max(initial=0), 1))
    lost = np.bincount(persona[churned] * k + t_lost, minlength=n_personas * k)
    alive = np.bincount(persona[~churned] * (k + 1) + t_alive,
                        minlength=n_personas * (k + 1))
    return (lost.reshape(n_personas, k).astype(np.float64),
            alive.reshape(n_personas, k + 1).astype(np.float64))


@dataclass(frozen=True)
class RFM:
    """Frequency, recency and age per customer with at least one transaction (BG/NBD).

    Attributes
    ----------
    index : ndarray of int64, shape (n,)
        Row of each customer in the :class:`Customers` table.
    x : ndarray of float64, shape (n,)
        Repeat transactions: days with a transaction after the first such day.
    t_x, T : ndarray of float64, shape (n,)
        Time of the last transaction and end of observation, from the first transaction, in
        time units.
    """

    index: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray


def rfm(stats: CustomerStats, unit: float) -> RFM:
    """BG/NBD summary per customer: conversions are transactions, one per day at most.

    Days are UTC calendar days for calendar timestamps and whole periods for period numbers;
    ``t_x`` and ``T`` are measured between days (as in Fader, Hardie & Lee 2005 and lifetimes).

    Raises
    ------
    InputError
        The log has no conversion events.
    """
    if not len(stats.day):
        raise InputError("bgnbd needs transactions (conversion events) and this log has none; "
                         "check --conversion-label")
    day_len = DAY if stats.time_kind == "datetime" else 1.0
    r, d = stats.day_customer, stats.day  # sorted by row, then day
    head = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    n_days = np.diff(np.r_[head, len(r)])
    first = d[head]
    last = d[np.r_[head[1:], len(r)] - 1]
    scale = day_len / unit
    end_day = np.floor(stats.observed_until / day_len)
    return RFM(index=r[head], x=(n_days - 1).astype(np.float64), t_x=(last - first) * scale,
               T=(end_day - first) * scale)


def compress(*columns: np.ndarray):
    """Unique rows of equal-length columns and how often each occurs (shrinks likelihoods).

    Returns
    -------
    unique : tuple of ndarray
        One array per input column, shape (n_unique,).
    weight : ndarray of float64, shape (n_unique,)
    inverse : ndarray of int64, shape (n,)
        Row of the unique table for each input row.
    """
    stacked = np.stack([np.asarray(c, np.float64) for c in columns], axis=1)
    uniq, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    return tuple(uniq.T), counts.astype(np.float64), inverse.ravel()


def weibull_rows(persona: np.ndarray, duration: np.ndarray, churned: np.ndarray,
                 n_personas: int) -> dict[str, np.ndarray]:
    """Data of :func:`~journeymodel.models.churn.likelihoods.pt_weibull_loglik`.

    Parameters
    ----------
    persona : ndarray of int, shape (n,)
    duration : ndarray of float64, shape (n,)
        Lifetimes > 0 in time units.
    churned : ndarray of bool, shape (n,)

    Returns
    -------
    dict
        ``offsets`` (n_personas + 1,): persona ``p``'s rows are ``offsets[p]:offsets[p + 1]``;
        ``log_d``, ``weight``: distinct (persona, duration, churned) rows sorted by persona;
        ``events``, ``events_log_d`` (n_personas,): churned customers and the sum of their
        log durations, per persona.
    """
    (p, d, ev), w, _ = compress(persona, duration, churned)
    p = p.astype(np.int64)
    log_d = np.log(d)
    ev = ev > 0
    return {"offsets": np.searchsorted(p, np.arange(n_personas + 1)).astype(np.int64),
            "log_d": log_d, "weight": w,
            "events": np.bincount(p[ev], weights=w[ev], minlength=n_personas),
            "events_log_d": np.bincount(p[ev], weights=(w * log_d)[ev],
                                        minlength=n_personas)}


def bgnbd_rows(persona: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
               n_personas: int) -> dict[str, np.ndarray]:
    """Data of :func:`~journeymodel.models.churn.likelihoods.pt_bgnbd_loglik`.

    One row per distinct (persona, x, t_x, T) with its count, sorted by persona and x; the
    likelihood is exact and its cost follows the number of distinct rows (at day resolution
    about half the customers at 100,000, a tenth at 10,000 over 39 weeks), not of customers.

    Returns
    -------
    dict
        ``cell_p``, ``cell_x``, ``cell_w``: total count per (persona, x); ``offsets``
        (2 n_personas + 1,): persona ``p``'s rows with ``x == 0`` are ``offsets[2p]:offsets[2p +
        1]``, with ``x > 0`` ``offsets[2p + 1]:offsets[2p + 2]``; ``times``: the distinct values
        of ``t_x`` and ``T``; per row ``x`` (int64), ``t_x_at`` and ``T_at`` (indices into
        ``times``) and ``weight``.
    """
    (p, xx, tx, tt), w, _ = compress(persona, x, t_x, T)
    p = p.astype(np.int64)
    xx = xx.astype(np.int64)
    (cp, cx), _, cell = compress(p, xx)
    times, at = np.unique(np.concatenate([tx, tt]), return_inverse=True)
    bounds = np.searchsorted(p * 2 + (xx > 0), np.arange(2 * n_personas + 1))
    return {"cell_p": cp.astype(np.int64), "cell_x": cx.astype(np.int64),
            "cell_w": np.bincount(cell, weights=w, minlength=len(cp)),
            "offsets": bounds.astype(np.int64), "times": times, "x": xx,
            "t_x_at": at[:len(tx)].astype(np.int64), "T_at": at[len(tx):].astype(np.int64),
            "weight": w}


def repeat_spend(stats: CustomerStats) -> np.ndarray:
    """Total value of each :func:`rfm` customer's repeat transactions (every transaction day
    but the first; a day's value is the sum of its conversions), shape (n,), in :func:`rfm`'s
    order."""
    r = stats.day_customer
    head = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    return np.add.reduceat(stats.day_value, head) - stats.day_value[head]


@dataclass(frozen=True)
class Spend:
    """Repeat buyers' spend, the Gamma-Gamma model's data (FHL 2005b: repeat transactions only).

    Attributes
    ----------
    use : ndarray of bool, shape (n,)
        The :func:`rfm` customers in the spend model: ``x > 0`` and positive repeat spend.
    x, m : ndarray of float64, shape (n,)
        Repeat transactions and mean value per repeat transaction (``m`` NaN where ``x = 0``).
    correlation : float
        Pearson correlation of ``x`` and ``m`` among the customers used (the model assumes
        spend independent of frequency); NaN with fewer than 3 customers or no spread.
    """

    use: np.ndarray
    x: np.ndarray
    m: np.ndarray
    correlation: float


def spend_of(stats: CustomerStats, s: RFM) -> Spend:
    """The Gamma-Gamma data of the :func:`rfm` customers ``s``.

    Raises
    ------
    InputError
        No repeat buyer has a positive repeat spend (no value column, or values all zero).
    """
    total = repeat_spend(stats)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(s.x > 0, total / s.x, np.nan)
    use = (s.x > 0) & (m > 0)
    if not use.any():
        raise InputError("the spend model needs repeat buyers with positive transaction "
                         "values and this log has none; check --value-col (the column of the "
                         "conversions' amounts)")
    corr = float("nan")
    if use.sum() >= 3 and np.ptp(s.x[use]) > 0 and np.ptp(m[use]) > 0:
        corr = float(np.corrcoef(s.x[use], m[use])[0, 1])
    return Spend(use, s.x, m, corr)


def spend_rows(persona: np.ndarray, x: np.ndarray, m: np.ndarray, n_personas: int
               ) -> dict[str, np.ndarray]:
    """Data of :func:`~journeymodel.models.churn.likelihoods.pt_gg_loglik` from the repeat
    buyers' persona, ``x`` > 0 and mean spend ``m`` > 0 (each shape (n,)).

    Returns
    -------
    dict
        ``gg_cell_p``, ``gg_cell_x``, ``gg_cell_w``: customers per (persona, x); per persona
        ``gg_n`` (customers) and ``gg_xlogs`` (sum of ``x log s``, ``s = x m``); ``gg_offsets``
        (n_personas + 1,) and per customer, sorted by persona, ``gg_x`` and ``gg_s``.
    """
    order = np.argsort(persona, kind="stable")
    p, xx = persona[order].astype(np.int64), x[order].astype(np.float64)
    total = xx * m[order]
    (cp, cx), cw, _ = compress(p, xx)
    return {"gg_cell_p": cp.astype(np.int64), "gg_cell_x": cx, "gg_cell_w": cw,
            "gg_n": np.bincount(p, minlength=n_personas).astype(np.float64),
            "gg_xlogs": np.bincount(p, weights=xx * np.log(total), minlength=n_personas),
            "gg_offsets": np.searchsorted(p, np.arange(n_personas + 1)).astype(np.int64),
            "gg_x": xx, "gg_s": total}
