"""The statistic of ``journeymodel compare``: transitions counted per group, where their fate
is known.

A *group* is the period in which a transition happened (``period:7D``), the device of the
touchpoint it left (``device``), or the customer's persona or any other per-customer column
(``persona``, ``column:NAME``). Transitions are those of the Markov model
(:mod:`journeymodel.stats.transitions`: window states of order ``k``, repeats merged or not),
from a touchpoint state to the next state or to an outcome (``conversion``, ``dropoff``,
``churn``); the start state is left out (it is not a touchpoint).

**Censoring.** A journey whose last event lies within the inactivity gap of the end of
observation is *censored*: nobody knows yet whether it will continue or drop off. Counting
every transition, as the Markov model may, would make drop-off look rarer near the end of any
log (the drop-offs of the last weeks cannot be seen yet) and a comparison by period would find
a spurious "drop-off fell" in its final weeks. So a from-state counts only where its fate is
observable whatever it turns out to be: its last event at time ``t`` with
``t + gap <= observed_until`` (then a next touchpoint or an outcome row, if any, came within the
gap, and otherwise the drop-off is known). The choice depends on ``t`` alone, never on the
fate, so rates are not biased; the price is that the last ``gap`` of the log is not compared.
Without a gap (plain period numbers) only states at the end of censored journeys are left out.

A state's time is that of its *last* event (repeats merged: the last of the run), the moment
its fate was decided; periods and devices are read there.

:class:`GroupedTransitions` adds up over parts of a log made of whole journeys (Dask
partitions of whole customers), whatever touchpoints or group names each part knows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from journeymodel.data.journeyset import (
    CENSORED,
    CHURN,
    CONVERSION,
    DROPOFF,
    OUTCOMES,
    JourneySet,
)
from journeymodel.errors import OptionError
from journeymodel.stats.additive import Additive
from journeymodel.stats.transitions import recode_keys, state_base, state_sequences
from journeymodel.stats.vocab import recode, union

__all__ = ["GROUP_KINDS", "GroupedTransitions", "Grouping", "dense_codes",
           "grouped_transitions", "parse_by", "period_of", "period_start"]

#: What ``--by`` accepts (``period:LENGTH`` and ``column:NAME`` take a value).
GROUP_KINDS = ("period", "device", "persona", "column")
_OUTCOME_KEY = {CONVERSION: -1, DROPOFF: -2, CHURN: -3}
#: The key of the absorbing state each outcome code leads to (0: none, censored).
_ABSORBING = np.array([_OUTCOME_KEY.get(o, 0) for o in range(len(OUTCOMES))], np.int64)
_DAY = 86400.0
#: Periods of whole weeks start on Mondays (1970-01-05 was a Monday), other periods at
#: midnight UTC of 1970-01-01: fixed anchors, so every part of a log cuts the same periods.
_MONDAY = 4 * _DAY
_UNITS = {"h": 3600.0, "d": _DAY, "w": 7 * _DAY}
_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


@dataclass(frozen=True)
class Grouping:
    """How journeys' transitions are put into groups (parsed from ``--by``).

    Attributes
    ----------
    kind : {"period", "device", "persona", "column"}
    text : str
        The ``--by`` value as given, e.g. ``"period:7D"``.
    column : str or None
        The per-customer column of ``column:NAME``.
    seconds : float
        Period length in seconds (datetimes) or in periods (plain period numbers); 0 for
        calendar months and categories.
    months : int
        Period length in calendar months (``period:1M``), else 0.
    unit : str
        The unit given (``h``, ``d``, ``w``, ``m``), empty for a plain number of periods.
    """

    kind: str
    text: str
    column: str | None = None
    seconds: float = 0.0
    months: int = 0
    unit: str = ""

    @property
    def is_period(self) -> bool:
        return self.kind == "period"

    @property
    def setting(self) -> tuple:
        """What must agree for two statistics to add up."""
        return (self.kind, self.column, self.seconds, self.months)


def parse_by(text: str) -> Grouping:
    """Parse ``--by``: ``period:7D`` (h, D, W or M units; a plain number for period
    timestamps), ``device``, ``persona`` or ``column:NAME``.

    Raises
    ------
    OptionError
        Anything else, naming the value.

    Examples
    --------
    >>> parse_by("period:7D").seconds / 86400, parse_by("period:1M").months
    (7.0, 1)
    >>> parse_by("column:acquisition_channel").column
    'acquisition_channel'
    """
    raw = str(text)
    kind, sep, value = raw.strip().partition(":")
    kind = kind.strip().lower()
    if kind in ("device", "persona") and not sep:
        return Grouping(kind, raw)
    if kind == "column" and value.strip():
        return Grouping("column", raw, column=value.strip())
    if kind == "period" and value.strip():
        return _parse_period(raw, value.strip())
    raise OptionError(
        f"--by must be period:LENGTH (e.g. period:7D, period:1M), device, persona or "
        f"column:NAME (got {raw!r})")


def _parse_period(raw: str, value: str) -> Grouping:
    m = _PERIOD.match(value)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in ("", "h", "d", "w", "m") or float(m.group(1)) <= 0:
        raise OptionError(
            f"--by {raw!r}: the period must be a positive number with a unit h, D, W or M "
            "(e.g. 7D, 1M; a plain number for period timestamps)")
    number = float(m.group(1))
    if unit == "m":
        if number != int(number):
            raise OptionError(f"--by {raw!r}: months must be whole (e.g. 1M, 3M)")
        return Grouping("period", raw, months=int(number), unit=unit)
    return Grouping("period", raw, seconds=number * _UNITS.get(unit, 0.0) if unit else number,
                    unit=unit)


# ---------------------------------------------------------------------------------------------
# The statistic


@dataclass(frozen=True, eq=False)
class GroupedTransitions(Additive):
    """Transitions between Markov states counted per group, where their fate is observable.

    Additive over parts of a log made of whole journeys: touchpoints and category names are
    aligned on their sorted union, periods are absolute (anchored at fixed dates).

    Attributes
    ----------
    order : int
    collapse : bool
    grouping : Grouping
    time_kind : str
    touchpoints : tuple of str
    names : tuple of str
        Category names (devices, personas, column values); empty for periods.
    group, from_key, to_key : ndarray of int64, shape (n_cells,)
        Distinct observed (group, state, next state) triples, sorted. ``group`` is a period
        number (periods since the anchor) or an index into ``names``; keys as in
        :mod:`journeymodel.stats.transitions` (outcomes negative).
    count : ndarray of float64, shape (n_cells,)
        Weighted transitions.
    visit_group, visit_key : ndarray of int64, shape (n_visits,)
        Distinct (group, state) pairs, sorted.
    journeys : ndarray of float64, shape (n_visits,)
        Weighted journeys that passed through the state in the group (counted once each).
    unobservable : float
        Weighted state visits left out because their fate was not yet observable.
    observed_until : float
    gap : float or None

    Examples
    --------
    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> def log(paths, outcomes, persona):  # every journey of one persona
    ...     js = journeys_from_codes(paths, outcomes)
    ...     return replace(js, persona=np.zeros(len(paths), np.int32), personas=(persona,))
    >>> a = grouped_transitions(log([["web"]], ["conversion"], "researcher"), "persona")
    >>> b = grouped_transitions(log([["email", "web"]], ["dropoff"], "loyalist"), "persona")
    >>> s = a + b
    >>> s.names, s.group.tolist(), s.from_key.tolist(), s.to_key.tolist(), s.count.tolist()
    (('loyalist', 'researcher'), [0, 0, 1], [1, 2, 2], [2, -2, -1], [1.0, 1.0, 1.0])
    >>> sum([b, a]).equals(s)
    True
    """

    order: int
    collapse: bool
    grouping: Grouping
    time_kind: str
    touchpoints: tuple[str, ...]
    names: tuple[str, ...]
    group: np.ndarray
    from_key: np.ndarray
    to_key: np.ndarray
    count: np.ndarray
    visit_group: np.ndarray
    visit_key: np.ndarray
    journeys: np.ndarray
    unobservable: float
    observed_until: float
    gap: float | None

    def _add(self, other: GroupedTransitions) -> GroupedTransitions:
        mine = (self.order, self.collapse, self.grouping.setting, self.time_kind, self.gap)
        theirs = (other.order, other.collapse, other.grouping.setting, other.time_kind,
                  other.gap)
        if mine != theirs:
            raise OptionError(
                "can only add grouped transitions counted with the same order, repeat "
                f"handling, grouping, time axis and gap (got {mine} and {theirs})")
        tps, ia, ib = union(self.touchpoints, other.touchpoints)
        names, na, nb = union(self.names, other.names)
        a, b = self._in(tps, ia, names, na), other._in(tps, ib, names, nb)
        g, f, t, c = _sum_by(np.concatenate([a.group, b.group]),
                             np.concatenate([a.from_key, b.from_key]),
                             np.concatenate([a.to_key, b.to_key]),
                             np.concatenate([a.count, b.count]))
        vg, vk, _, vj = _sum_by(np.concatenate([a.visit_group, b.visit_group]),
                                np.concatenate([a.visit_key, b.visit_key]),
                                np.zeros(len(a.visit_key) + len(b.visit_key), np.int64),
                                np.concatenate([a.journeys, b.journeys]))
        until = float(np.fmax(self.observed_until, other.observed_until))
        return replace(self, touchpoints=tps, names=names, group=g, from_key=f, to_key=t,
                       count=c, visit_group=vg, visit_key=vk, journeys=vj,
                       unobservable=self.unobservable + other.unobservable,
                       observed_until=until)

    def _in(self, tps: tuple[str, ...], tindex: np.ndarray, names: tuple[str, ...],
            nindex: np.ndarray) -> GroupedTransitions:
        """The same counts in vocabularies ``tps`` and ``names`` (codes mapped by the index)."""
        out = self
        if tps != self.touchpoints:
            base, new = len(self.touchpoints) + 1, state_base(len(tps), self.order)

            def keys(k):
                return recode_keys(k, tindex, base, new, self.order)

            out = replace(out, touchpoints=tps, from_key=keys(out.from_key),
                          to_key=keys(out.to_key), visit_key=keys(out.visit_key))
        if names != self.names and not self.grouping.is_period:
            out = replace(out, names=names, group=recode(out.group, nindex),
                          visit_group=recode(out.visit_group, nindex))
        return out

    def equals(self, other: GroupedTransitions, rtol: float = 1e-9) -> bool:
        """Same settings and counts (float sums up to ``rtol``), compared on the union of
        vocabularies."""
        try:
            zero_a = replace(self, group=self.group[:0], from_key=self.from_key[:0],
                             to_key=self.to_key[:0], count=self.count[:0],
                             visit_group=self.visit_group[:0], visit_key=self.visit_key[:0],
                             journeys=self.journeys[:0], unobservable=0.0)
            a, b = self + replace(other, group=other.group[:0], from_key=other.from_key[:0],
                                  to_key=other.to_key[:0], count=other.count[:0],
                                  visit_group=other.visit_group[:0],
                                  visit_key=other.visit_key[:0], journeys=other.journeys[:0],
                                  unobservable=0.0), other + zero_a
        except OptionError:
            return False
        return (a.touchpoints == b.touchpoints and a.names == b.names
                and all(np.array_equal(getattr(a, f), getattr(b, f))
                        for f in ("group", "from_key", "to_key", "visit_group", "visit_key"))
                and np.allclose(a.count, b.count, rtol=rtol)
                and np.allclose(a.journeys, b.journeys, rtol=rtol)
                and math.isclose(a.unobservable, b.unobservable, rel_tol=rtol)
                and np.array_equal(a.observed_until, b.observed_until, equal_nan=True))


def _sum_by(g: np.ndarray, f: np.ndarray, t: np.ndarray, w: np.ndarray):
    """Distinct (g, f, t) triples, sorted, with summed weights ``w``."""
    if len(g) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty.copy(), empty.copy(), np.zeros(0)
    inv = np.zeros(len(g), np.int64)
    uniques = []
    for c in (g, f, t):  # each column compressed to 0..U-1, then combined (mixed radix)
        u, i = dense_codes(np.asarray(c, np.int64))
        uniques.append(u)
        inv *= len(u)
        inv += i
    space = int(np.prod([len(u) for u in uniques], dtype=np.float64))
    if space <= 1 << 24:
        sums = np.bincount(inv, weights=w, minlength=space)
        cell = np.flatnonzero(np.bincount(inv, minlength=space))
        sums = sums[cell]
    else:
        cell, where = np.unique(inv, return_inverse=True)
        sums = np.bincount(where, weights=w, minlength=len(cell))
    out = []
    for u in reversed(uniques):
        out.append(u[cell % len(u)])
        cell = cell // len(u)
    return out[2], out[1], out[0], sums


def dense_codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct sorted keys, index of each key into them); a lookup table when the keys'
    range is small (no sort), else :func:`numpy.unique`.

    Examples
    --------
    >>> u, i = dense_codes(np.array([5, -2, 5, 7]))
    >>> u.tolist(), i.tolist()
    ([-2, 5, 7], [1, 0, 1, 2])
    """
    if len(keys) == 0:
        return keys.astype(np.int64), keys.astype(np.int64)
    lo, hi = int(keys.min()), int(keys.max())
    if hi - lo <= 1 << 24:
        at = keys - lo if lo else keys  # one shifted copy, none when the keys start at 0
        present = np.zeros(hi - lo + 1, bool)
        present[at] = True
        index = np.cumsum(present) - 1
        return np.flatnonzero(present) + lo, index[at]
    return np.unique(keys, return_inverse=True)


# ---------------------------------------------------------------------------------------------
# Building it from journeys


def grouped_transitions(journeys: JourneySet, grouping: Grouping | str, order: int = 1,
                        collapse: bool = True) -> GroupedTransitions:
    """Count every journey's transitions per group, in one vectorised pass.

    Parameters
    ----------
    journeys : JourneySet
        For ``persona`` and ``column:NAME`` the journeys' persona holds the grouping column
        (see :func:`journeymodel.analysis.compare.compare`).
    grouping : Grouping or str
        See :func:`parse_by`.
    order : int
        Window length 1..4 (as ``fit markov --order``).
    collapse : bool
        Merge consecutive identical states.

    Returns
    -------
    GroupedTransitions

    Raises
    ------
    OptionError
        Periods without timestamps, devices without a device column, personas without a
        persona column.
    """
    grouping = parse_by(grouping) if isinstance(grouping, str) else grouping
    state_base(len(journeys.touchpoints), order)  # checks the order
    _check_grouping(journeys, grouping)
    # event indices in place of times: each state occurrence then knows its first event
    by_event = replace(journeys, times=np.arange(journeys.n_events, dtype=np.float64))
    seq = state_sequences(by_event, order, collapse)
    n_occ = len(seq.keys)
    lengths = np.diff(seq.offsets)
    occ_j = np.repeat(np.arange(journeys.n_journeys), lengths)
    first_ev = seq.entered.astype(np.int64)
    is_last = np.zeros(n_occ, bool)
    is_last[seq.offsets[1:][lengths > 0] - 1] = True
    following = np.append(first_ev[1:], 0) - 1
    last_ev = np.where(is_last, journeys.offsets[occ_j + 1] - 1, following)
    outcome = journeys.outcome[occ_j]
    absorbing = _ABSORBING[outcome]  # np.select over the outcomes, as one lookup
    to_key = np.where(is_last, absorbing, np.append(seq.keys[1:], 0))
    weight = journeys.weight[occ_j]
    known = ~(is_last & (outcome == CENSORED))
    timed = journeys.time_kind != "none"
    t = journeys.times[last_ev] if timed else None
    if journeys.gap is not None and timed:
        known &= t + journeys.gap <= journeys.observed_until
    group, names = _groups(journeys, grouping, last_ev, occ_j, t)
    use = known & (group >= 0)
    unobservable = float(weight[~known].sum())
    if not use.all():  # each column compressed once
        group, keys, to_key, weight, occ_j = (a[use] for a in (group, seq.keys, to_key, weight,
                                                                occ_j))
    else:
        keys = seq.keys
    g, f, to, c = _sum_by(group, keys, to_key, weight)
    vg, vk, vj = _journeys_per_visit(occ_j, group, keys, journeys.weight)
    return GroupedTransitions(
        order=order, collapse=bool(collapse), grouping=grouping, time_kind=journeys.time_kind,
        touchpoints=tuple(journeys.touchpoints), names=names, group=g, from_key=f, to_key=to,
        count=c, visit_group=vg, visit_key=vk, journeys=vj, unobservable=unobservable,
        observed_until=float(journeys.observed_until), gap=journeys.gap)


#: Up to this many (group, state) cells, journeys per cell are summed by one bincount.
DIRECT_CELLS = 1 << 24


def _journeys_per_visit(journey: np.ndarray, group: np.ndarray, key: np.ndarray,
                        weight: np.ndarray):
    """Distinct (group, state) pairs with the weighted number of distinct journeys in each
    (``weight``: each journey's weight, by journey index)."""
    ug, ig = dense_codes(group)
    uk, ik = dense_codes(key)
    visit = ig * len(uk) + ik
    # a journey counts once per (group, state): distinct (journey, visit) pairs
    pair = np.sort(journey.astype(np.int64) * (len(ug) * len(uk)) + visit)
    pair = pair[np.r_[True, pair[1:] != pair[:-1]]]  # sort + diff: np.unique hashes, 20x slower
    space = len(ug) * len(uk)
    j, v = np.divmod(pair, space)
    if space <= DIRECT_CELLS:  # v already numbers the (group, state) cells in sorted order
        sums = np.bincount(v, weights=weight[j], minlength=space)
        cell = np.flatnonzero(np.bincount(v, minlength=space))
        return ug[cell // len(uk)], uk[cell % len(uk)], sums[cell]
    vg, vk, _, vj = _sum_by(ug[v // len(uk)], uk[v % len(uk)], np.zeros(len(v), np.int64),
                            weight[j])
    return vg, vk, vj


def _check_grouping(journeys: JourneySet, grouping: Grouping) -> None:
    src = journeys.ledger.source
    if grouping.is_period:
        if journeys.time_kind == "none":
            raise OptionError(f"{src}: --by {grouping.text} needs timestamps; these journeys "
                              "have none (an aggregated path table)")
        if journeys.time_kind == "period" and (grouping.unit or grouping.seconds
                                               != round(grouping.seconds)):
            raise OptionError(
                f"{src}: --by {grouping.text!r}: the timestamps are plain period numbers; give "
                "a whole number of periods, e.g. period:4")
        if journeys.time_kind == "datetime" and not grouping.unit:
            raise OptionError(f"--by {grouping.text!r}: give the period with a unit h, D, W or "
                              "M (e.g. period:7D)")
        if journeys.time_kind == "datetime" and grouping.seconds and grouping.seconds < 3600:
            raise OptionError(f"--by {grouping.text!r}: periods must be at least 1h")
    elif grouping.kind == "device" and (journeys.device is None or not journeys.devices):
        raise OptionError(f"{src}: --by device needs a device column (--device-col); the log "
                          "has none")
    elif grouping.kind in ("persona", "column") and not journeys.personas:
        what = ("a persona column (--persona-col)" if grouping.kind == "persona"
                else f"the column {grouping.column!r}")
        raise OptionError(f"{src}: --by {grouping.text} needs {what} with values; none found")


def _groups(journeys: JourneySet, grouping: Grouping, last_ev: np.ndarray, occ_j: np.ndarray,
            t: np.ndarray | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Group of every state occurrence (-1: unknown) and the category names."""
    if grouping.kind == "device":
        return journeys.device[last_ev].astype(np.int64), tuple(journeys.devices)
    if grouping.kind in ("persona", "column"):
        return journeys.persona[occ_j].astype(np.int64), tuple(journeys.personas)
    return period_of(t, grouping, journeys.time_kind), ()


def period_of(t: np.ndarray, grouping: Grouping, time_kind: str) -> np.ndarray:
    """Period number of times ``t`` (see :func:`period_start` for its start)."""
    if grouping.months:
        months = np.asarray(t, np.float64).astype("datetime64[s]").astype("datetime64[M]")
        return np.floor_divide(months.astype(np.int64), grouping.months)
    anchor = _anchor(grouping, time_kind)
    return np.floor((np.asarray(t, np.float64) - anchor) / grouping.seconds).astype(np.int64)


def period_start(period: np.ndarray, grouping: Grouping, time_kind: str) -> np.ndarray:
    """Start of each period: seconds since the epoch (datetimes) or a period number."""
    period = np.asarray(period, np.int64)
    if grouping.months:
        months = (period * grouping.months).astype("datetime64[M]")
        return months.astype("datetime64[s]").astype(np.int64).astype(np.float64)
    return _anchor(grouping, time_kind) + period * grouping.seconds


def _anchor(grouping: Grouping, time_kind: str) -> float:
    if time_kind != "datetime":
        return 0.0
    return _MONDAY if grouping.seconds % (7 * _DAY) == 0 else 0.0
