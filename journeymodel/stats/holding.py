"""Holding times: how long a customer stays after an event before the journey's next event.

The statistic, :class:`HoldingStats`, counts observed holding times per (touchpoint of an
event, what the next event is) on ONE fixed log-spaced grid of the time axis (so two parts of a
log add up exactly, whatever they contain), plus what is known of the events that have no
observed next event: the drop-offs (silent for longer than the inactivity gap) and the
censored last events of in-flight journeys, binned by the time already spent since them.

The fitted distribution, :class:`HoldingTimes`, is a smoothed empirical distribution on that
grid: counts smoothed along log-time (a Gaussian kernel of :data:`BANDWIDTH` bins) and shrunk
towards the touchpoint's pooled distribution, itself shrunk towards the global one
(:data:`SHRINK` pseudo-observations each): a (touchpoint, next) pair with few observations backs
off smoothly to its touchpoint's, then to the global distribution. Within a bin the
distribution is log-uniform (uniform in the first bin ``[0, lo)``), so ``sf``, ``sample`` and
``mean`` are exact for the stored table. Censored last events are used, not dropped: EM
allocates each to the competing next events (and to drop-off) in proportion to
``q_k S_k(elapsed)``, and over the bins beyond its elapsed time, until the allocation converges.

Why a smoothed empirical distribution rather than a parametric family: holding times are
truncated at the gap (a longer silence is a drop-off, not a holding time), can be multi-modal
(same-day follow-ups and a weekly rhythm), and the table must back off pair -> touchpoint ->
global; and no one family fits every log. ``benchmarks/holding_families.py`` scores each
candidate's held-out binned log-likelihood per holding time (two halves of the customers, each
fitted on one and scored on the other, the same back-off for all): on the sample data (whose
generator draws lognormal gaps) lognormal is best, gamma 0.05 and exponential 0.08 nats behind;
on a process with gamma holding times gamma is best and lognormal 0.04 behind; the smoothed
empirical distribution is within 0.04 (bandwidth 0.5) of the best on both without knowing the
family. A wider kernel scores up to 0.03 better but spreads mass into the right tail, which the
censoring correction reads: on the known process with 40% in flight (12 seeds), the event-level
P(drop-off) came out 0.003-0.005 low with bandwidth 1 and 0.001-0.003 low with 0.5 (standard
errors 0.0012-0.0023; 0.0006 low to 0.0017 high without smoothing), so :data:`BANDWIDTH` is 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.blas import one_blas_thread
from journeymodel.data.journeyset import CENSORED, CHURN, CONVERSION, DROPOFF, JourneySet
from journeymodel.errors import ModelFileError, OptionError
from journeymodel.stats.additive import Additive
from journeymodel.stats.vocab import union

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

#: The next events after a touchpoint that are not touchpoints (in this order after them).
OUTCOME_TARGETS = ("conversion", "churn")
#: Log-spaced bins per decade of the time grid.
PER_DECADE = 10
#: (lowest positive edge, highest finite edge) of the grid per time axis: seconds for calendar
#: time (1 s .. about 31 years), periods for period numbers.
GRID_RANGE = {"datetime": (1.0, 1e9), "period": (0.1, 1e7)}
#: Kernel bandwidth (in bins) of the smoothing along log-time.
BANDWIDTH = 0.5
#: Pseudo-observations of the parent distribution a pair (or a touchpoint) is shrunk with.
SHRINK = 10.0
_EM_TOL = 1e-9
_EM_MAX = 500


def grid_edges(time_kind: str) -> np.ndarray:
    """Bin edges of the fixed grid of a time axis: ``0``, then log-spaced from ``lo`` to
    ``hi`` (:data:`PER_DECADE` per decade), then ``inf``.

    Examples
    --------
    >>> e = grid_edges("period")
    >>> float(e[0]), float(e[1]), float(e[11]), bool(np.isinf(e[-1])), len(e) - 1
    (0.0, 0.1, 1.0, True, 82)
    """
    if time_kind not in GRID_RANGE:
        raise OptionError(f"holding times need timestamps (got time kind {time_kind!r})")
    lo, hi = GRID_RANGE[time_kind]
    n = int(round(np.log10(hi / lo) * PER_DECADE))
    return np.concatenate([[0.0], lo * 10.0 ** (np.arange(n + 1) / PER_DECADE), [np.inf]])


def bin_of(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each time (``edges[b] <= t < edges[b + 1]``; negatives in bin 0, NaN in the
    last bin).

    On edges whose positive part widens by more than 1% a bin (the grid's log-spaced edges)
    the bin is read from a table by the time's float exponent and first mantissa bits (a
    bucket of times within 0.4% of each other, which at most one edge splits), then one step
    up where an edge lies between: exact, and 2.7x faster than the logarithm it replaces
    (issue 20), 7x faster than a binary search over millions of times."""
    t = np.ascontiguousarray(t, np.float64)
    last = len(edges) - 2
    lookup = _bin_lookup(np.asarray(edges, np.float64).tobytes())
    if lookup is None:
        return np.clip(np.searchsorted(edges, t, "right") - 1, 0, last).astype(np.int64)
    first, table, high = lookup
    bucket = t.view(np.int64) >> _BUCKET_SHIFT  # increasing with t for t >= 0
    bucket -= first
    b = np.take(table, bucket, mode="clip")  # below lo: bin 0; above the grid: its last bucket
    b += np.take(high, b) <= t
    nan = np.isnan(t)
    if nan.any():
        b[nan] = last
    return b


#: Bits of a float64 kept by :func:`bin_of`'s buckets: sign, exponent and 8 mantissa bits.
_BUCKET_SHIFT = 44


@lru_cache(maxsize=8)
def _bin_lookup(edges_bytes: bytes) -> tuple[int, np.ndarray, np.ndarray] | None:
    """(first bucket, bin of each bucket's smallest time, each bin's upper edge (NaN for the
    last bin: no step up)) of :func:`bin_of`, or None where the edges do not take the table
    (made once per grid). The first bucket is the one below the lowest positive edge's: every
    time under it (negatives too) is in bin 0, with no step up."""
    edges = np.frombuffer(edges_bytes, np.float64)
    if len(edges) < 3 or not edges[1] > 0 or not np.isfinite(edges[-2]):
        return None
    inner = edges[1:-1]
    if not np.all(inner[1:] >= inner[:-1] * 1.01):
        return None
    first, top = (int(x) >> _BUCKET_SHIFT for x in inner[[0, -1]].view(np.int64))
    if top - first > 1 << 16 or first < 1:
        return None
    first -= 1
    starts = (np.arange(first, top + 1, dtype=np.int64) << _BUCKET_SHIFT).view(np.float64)
    table = np.maximum(np.searchsorted(edges, starts, "right") - 1, 0)
    high = edges[1:].copy()
    high[-1] = np.nan
    return first, table.astype(np.int64), high


# ---------------------------------------------------------------------------------------------
# The statistic


@dataclass(frozen=True, eq=False)
class HoldingStats(Additive):
    """Additive statistic of holding times (see the module docstring).

    Attributes
    ----------
    time_kind : str
        ``"datetime"`` (seconds) or ``"period"``.
    gap : float or None
        Inactivity gap on the time axis (a setting: parts with different gaps are refused).
    touchpoints : tuple of str
        Sources; targets are ``touchpoints + ("conversion", "churn")``.
    src, dst, bin : ndarray of int64, shape (n_cells,)
        Distinct observed (touchpoint, next event, grid bin) cells, sorted.
    count : ndarray of float64, shape (n_cells,)
        Weighted number of holding times in each cell.
    dropoff : ndarray of float64, shape (n_touchpoints,)
        Weighted drop-offs after each touchpoint (journeys silent for longer than the gap).
    censored : ndarray of float64, shape (n_touchpoints, n_bins)
        Weighted last events of in-flight journeys by touchpoint and bin of the time since.

    Examples
    --------
    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> from dataclasses import replace
    >>> def timed(path, outcome, times):
    ...     js = journeys_from_codes([path], [outcome])
    ...     return replace(js, times=np.array(times, float), end=np.array([times[-1]], float),
    ...                    time_kind="period", gap=50.0, observed_until=100.0)
    >>> a = holding_stats(timed(["web", "email"], "dropoff", [0, 3]))
    >>> b = holding_stats(timed(["email", "web"], "censored", [90, 92]))
    >>> s = a + b
    >>> s.touchpoints, s.src.tolist(), s.dst.tolist(), s.count.tolist(), s.dropoff.tolist()
    (('email', 'web'), [0, 1], [1, 0], [1.0, 1.0], [1.0, 0.0])
    >>> sum([b, a]).equals(s), float(s.censored.sum())
    (True, 1.0)
    """

    time_kind: str
    gap: float | None
    touchpoints: tuple[str, ...]
    src: np.ndarray
    dst: np.ndarray
    bin: np.ndarray
    count: np.ndarray
    dropoff: np.ndarray
    censored: np.ndarray

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.touchpoints) + OUTCOME_TARGETS

    @property
    def edges(self) -> np.ndarray:
        return grid_edges(self.time_kind)

    def _add(self, other: HoldingStats) -> HoldingStats:
        if self.time_kind != other.time_kind or not _same_gap(self.gap, other.gap):
            raise OptionError(
                "can only add holding-time statistics on the same time axis and gap (got "
                f"{self.time_kind!r} with gap {self.gap} and {other.time_kind!r} with gap "
                f"{other.gap})")
        names, mine, theirs = union(self.touchpoints, other.touchpoints)
        a, b = self.in_vocabulary(names, mine), other.in_vocabulary(names, theirs)
        src, dst, bn, count = _group(np.concatenate([a.src, b.src]),
                                     np.concatenate([a.dst, b.dst]),
                                     np.concatenate([a.bin, b.bin]),
                                     np.concatenate([a.count, b.count]),
                                     len(names) + 2, a.censored.shape[1])
        return HoldingStats(self.time_kind, self.gap, names, src, dst, bn, count,
                            a.dropoff + b.dropoff, a.censored + b.censored)

    def in_vocabulary(self, names: tuple[str, ...], index: np.ndarray) -> HoldingStats:
        """The same statistic with touchpoint ``i`` renamed ``index[i]`` in ``names``."""
        if tuple(names) == tuple(self.touchpoints):
            return self
        T, new_t = len(self.touchpoints), len(names)
        dst = np.where(self.dst < T, index[np.minimum(self.dst, max(T - 1, 0))] if T else 0,
                       self.dst - T + new_t)
        dropoff = np.zeros(new_t)
        dropoff[index] = self.dropoff
        censored = np.zeros((new_t, self.censored.shape[1]))
        censored[index] = self.censored
        src, dst, bn, count = _group(index[self.src] if len(self.src) else self.src, dst,
                                     self.bin, self.count, new_t + 2, self.censored.shape[1])
        return HoldingStats(self.time_kind, self.gap, tuple(names), src, dst, bn, count,
                            dropoff, censored)

    def equals(self, other: HoldingStats, rtol: float = 1e-9) -> bool:
        """Same settings and counts (float sums up to ``rtol``), compared on the union of
        names."""
        if self.time_kind != other.time_kind or not _same_gap(self.gap, other.gap):
            return False
        names, mine, theirs = union(self.touchpoints, other.touchpoints)
        a, b = self.in_vocabulary(names, mine), other.in_vocabulary(names, theirs)
        return (all(np.array_equal(x, y) for x, y in ((a.src, b.src), (a.dst, b.dst),
                                                      (a.bin, b.bin)))
                and np.allclose(a.count, b.count, rtol=rtol)
                and np.allclose(a.dropoff, b.dropoff, rtol=rtol)
                and np.allclose(a.censored, b.censored, rtol=rtol))

    def pair_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pair src, pair dst, counts of shape (n_pairs, n_bins)) of the observed pairs."""
        B = len(self.edges) - 1
        key = self.src * (len(self.touchpoints) + 2) + self.dst
        pk, inv = np.unique(key, return_inverse=True)
        table = np.zeros((len(pk), B))
        np.add.at(table, (inv, self.bin), self.count)
        width = len(self.touchpoints) + 2
        return pk // width, pk % width, table


def _same_gap(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and float(a) == float(b))


def _group(src, dst, bn, count, n_targets: int, n_bins: int):
    """Distinct (src, dst, bin) cells, sorted, with summed counts (a bincount over the cell
    space when it is small: no sort of millions of keys)."""
    key = (src.astype(np.int64) * n_targets + dst) * n_bins + bn
    space = (n_targets - 2) * n_targets * n_bins
    if 0 < space <= 1 << 24:
        summed = np.bincount(key, weights=count, minlength=space)
        uk = np.flatnonzero(np.bincount(key, minlength=space))
        summed = summed[uk]
    else:
        uk, inv = np.unique(key, return_inverse=True)
        summed = np.bincount(inv, weights=count, minlength=len(uk))
    return (uk // (n_targets * n_bins), (uk // n_bins) % n_targets, uk % n_bins,
            summed.astype(np.float64))


def _group_parts(parts, edges, n_targets: int, n_bins: int):
    """:func:`_group` of the parts' (source, next event, holding time, weight or None: 1)
    concatenated, times that are not finite left out. A part may carry a fifth item: the
    indices of its entries to leave out (the moves from a journey's last event, when the
    moves are given as shifted slices of the events: no gathers of every event). Parts have
    distinct next events, so over a small cell space each is counted on its own and added:
    the same sums, bit for bit (a cell's terms all come from one part, in the same order),
    without concatenating and filtering arrays of every event (unit weights: counts, exact as
    sums of ones; entries left out are counted in an extra cell, then dropped)."""
    space = (n_targets - 2) * n_targets * n_bins
    if not 0 < space <= 1 << 24:
        kept = [(p, _kept(p)) for p in parts]
        src = np.concatenate([np.asarray(p[0], np.int64)[k] for p, k in kept])
        dst = np.concatenate([np.asarray(p[1], np.int64)[k] for p, k in kept])
        dt = np.concatenate([p[2][k] for p, k in kept])
        w = np.concatenate([np.ones(int(k.sum())) if p[3] is None else p[3][k]
                            for p, k in kept])
        return _group(src, dst, bin_of(dt, edges), w, n_targets, n_bins)
    summed = np.zeros(space)
    present = np.zeros(space, np.int64)
    for src, dst, dt, w, *skip in parts:
        key = src.astype(np.int64) * n_targets
        key += dst
        key *= n_bins
        key += bin_of(dt, edges)
        if skip:
            key[skip[0]] = space
        ok = np.isfinite(dt)
        if not ok.all():
            key[~ok] = space
        n = np.bincount(key, minlength=space + 1)[:space]
        present += n
        summed += n if w is None else np.bincount(key, weights=w, minlength=space + 1)[:space]
    uk = np.flatnonzero(present)
    return (uk // (n_targets * n_bins), (uk // n_bins) % n_targets, uk % n_bins,
            summed[uk].astype(np.float64))


def _kept(part) -> np.ndarray:
    """Entries of a :func:`_group_parts` part that count: finite times, not left out."""
    keep = np.isfinite(part[2])
    if len(part) > 4:
        keep[part[4]] = False
    return keep


def holding_stats(journeys: JourneySet) -> HoldingStats:
    """The :class:`HoldingStats` of ``journeys`` (vectorised over all events).

    Each touchpoint event followed by another event of its journey gives one holding time:
    to the next touchpoint, or to the conversion or churn row that ends the journey. The last
    touchpoint of a drop-off counts a drop-off; that of an in-flight journey counts a censored
    event at ``observed_until - time``.

    Raises
    ------
    OptionError
        Journeys without timestamps (aggregated paths).
    """
    edges = grid_edges(journeys.time_kind)
    B = len(edges) - 1
    T = len(journeys.touchpoints)
    L = journeys.lengths
    unit = bool(np.all(journeys.weight == 1.0))  # then counts are the numbers of times
    has = np.flatnonzero(L > 0)
    last = journeys.offsets[1:][has] - 1
    # (source, next event, holding time, weight) of the moves to a next touchpoint (from
    # every event but a journey's last: those are left out), then of the conversion and
    # churn rows that end journeys: parts with distinct next events
    codes, times = journeys.codes, journeys.times
    parts = [(codes[:-1], codes[1:], np.diff(times),
              None if unit else np.repeat(journeys.weight, L)[:-1],
              last[last < journeys.n_events - 1])]
    # each journey's last touchpoint, its time and weight: gathered once, then selected
    out = journeys.outcome[has]
    code_h, time_h, w_h = codes[last], times[last], journeys.weight[has]
    for code, k in ((CONVERSION, T), (CHURN, T + 1)):
        sel = np.flatnonzero(out == code)
        parts.append((code_h[sel], np.full(len(sel), k, np.int64),
                      journeys.end[has[sel]] - time_h[sel], None if unit else w_h[sel]))
    src, dst, bn, count = _group_parts(parts, edges, T + 2, B)
    drop = out == DROPOFF
    dropoff = np.bincount(code_h[drop], weights=w_h[drop], minlength=T).astype(np.float64)
    cens = out == CENSORED
    elapsed, c, w = journeys.observed_until - time_h[cens], code_h[cens], w_h[cens]
    fin = np.isfinite(elapsed)
    if not fin.all():
        elapsed, c, w = elapsed[fin], c[fin], w[fin]
    # a bincount adds each cell's weights in index order from 0, as np.add.at (the same bits)
    cell = c * np.int64(B) + bin_of(elapsed, edges)
    censored = np.bincount(cell, weights=w, minlength=T * B).reshape(T, B)
    return HoldingStats(journeys.time_kind, journeys.gap, tuple(journeys.touchpoints), src, dst,
                        bn, count, dropoff, censored)


# ---------------------------------------------------------------------------------------------
# The fitted distributions


def support_edges(time_kind: str, gap: float | None) -> np.ndarray:
    """The grid's edges as the fitted distribution uses them: the infinite last edge becomes
    ten times the last finite one, and with a gap, the support ends at the gap (holding times
    are at most the gap: a longer silence is a drop-off)."""
    e = grid_edges(time_kind).copy()
    e[-1] = e[-2] * 10.0
    if gap is not None and np.isfinite(gap) and gap > 0:
        b = int(bin_of(np.array([gap]), e)[0])
        e[b + 1:] = np.maximum(e[b + 1:], gap)
        e[b + 1] = gap
        e[b + 2:] = gap
    return e


def _width_ok(edges: np.ndarray) -> np.ndarray:
    """Bins with positive width (bins beyond the gap have none: no mass there)."""
    return edges[1:] > edges[:-1]


def smooth(counts: np.ndarray, ok: np.ndarray, bandwidth: float = BANDWIDTH) -> np.ndarray:
    """Counts (..., n_bins) smoothed along bins by a Gaussian kernel, kept on bins ``ok``
    (mass leaking onto other bins is put back by renormalising each kernel column)."""
    kernel = smoothing_kernel(ok, bandwidth)
    if kernel is None:
        return counts * ok
    with one_blas_thread():  # the same bits on any number of cores; no thread hand-offs
        return counts @ kernel


def smoothing_kernel(ok: np.ndarray, bandwidth: float = BANDWIDTH) -> np.ndarray | None:
    """The transposed kernel matrix of :func:`smooth` (``counts @ kernel`` smooths), or None
    when ``bandwidth <= 0`` (no smoothing). Made once per fit: the EM of :func:`fit_holding`
    smooths at every step with the same bins."""
    if bandwidth <= 0:
        return None
    B = len(ok)
    d = np.arange(B)[:, None] - np.arange(B)[None, :]
    K = np.exp(-0.5 * (d / bandwidth) ** 2) * ok[:, None] * ok[None, :]
    col = K.sum(axis=0)
    K = np.divide(K, col, out=np.zeros_like(K), where=col > 0)
    return K.T


def _normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` divided by their sums (rows summing to 0 or less: zeros). Where every sum
    is positive, a plain division: the same quotients, without the masked ufunc loop (twice
    as fast on the EM's tables)."""
    s = x.sum(axis=-1, keepdims=True)
    positive = s > 0
    if positive.all():
        return x / s
    return np.divide(x, s, out=np.zeros_like(x), where=positive)


@dataclass(frozen=True, eq=False)
class _RankBlocks:
    """Where each value goes in :func:`_add_rows`' block: ``rank`` (its index among the
    values of the same row, in index order), ``rows``, and ``n_ranks`` (the most values of
    one row)."""

    rank: np.ndarray
    rows: np.ndarray
    n_ranks: int


def _rank_groups(rows: np.ndarray) -> _RankBlocks:
    """The :class:`_RankBlocks` of ``rows`` (for :func:`_add_rows`; made once per fit)."""
    order = np.argsort(rows, kind="stable")
    srt = rows[order]
    rank = np.empty(len(rows), np.int64)
    rank[order] = np.arange(len(rows)) - np.searchsorted(srt, srt)
    return _RankBlocks(rank, rows, int(rank.max(initial=-1)) + 1)


def _add_rows(out: np.ndarray, groups: _RankBlocks, values: np.ndarray) -> np.ndarray:
    """``np.add.at(out, rows, values)``, the same bits: the values are placed in a block by
    (rank, row), then its slabs added rank by rank, so each row adds its values in index order
    as ``np.add.at`` does (absent ranks add a zero, which changes no sum), with one scatter
    and a slice addition per rank instead of a step per value (issue 20: add.at was 38% of
    the holding-time EM at 1,000 customers; a gather and scatter per rank, 30% at 100k)."""
    block = np.zeros((groups.n_ranks, *out.shape))
    block[groups.rank, groups.rows] = values
    for slab in block:  # a loop over ranks (at most the targets of one touchpoint)
        out += slab
    return out


def _hierarchy(pair_src, pair_counts, T, ok, kernel, shrink, groups):
    """pmfs (global, per touchpoint, per pair), each shrunk towards its parent (``kernel``:
    :func:`smoothing_kernel`'s; the caller runs BLAS on one thread; ``groups``: the
    :func:`_rank_groups` of ``pair_src``)."""
    sm = pair_counts * ok if kernel is None else pair_counts @ kernel
    glob = _normalise(sm.sum(axis=0))
    if not glob.any():  # no holding time at all: log-uniform over the supported bins
        glob = _normalise(ok.astype(float))
    per_t = _add_rows(np.zeros((T, len(ok))), groups, sm)
    states = _normalise(per_t + shrink * glob)
    pairs = _normalise(sm + shrink * states[pair_src])
    return glob, states, pairs


def _upper_sf(pmf: np.ndarray) -> np.ndarray:
    """Survival at the middle of each bin (half of the bin's own mass above it), (..., B)."""
    above = np.cumsum(pmf[..., ::-1], axis=-1)[..., ::-1] - pmf
    return above + 0.5 * pmf


def _unit_clip(x: np.ndarray, nan: float) -> np.ndarray:
    """``x`` clipped to [0, 1], NaN becoming ``nan`` (as ``clip(nan_to_num(x, nan=nan), 0,
    1)``, in two passes)."""
    if nan == 0.0:
        return np.fmin(np.fmax(x, 0.0), 1.0)
    return np.fmax(np.fmin(x, 1.0), 0.0)


#: Draws of :meth:`HoldingTimes.sample` computed at once (temporaries that stay in cache).
_BLOCK = 1 << 15
#: Cells of the guide table per cdf row (:class:`_Guide`).
GUIDE_CELLS = 1024


@dataclass(frozen=True, eq=False)
class _Lookup:
    """Lookups of a :class:`HoldingTimes`, built once: ``row_of[src * n_targets + dst]`` is
    the cdf row of a pair (its touchpoint's when the pair was never observed); ``cdf`` the
    table flattened; per bin, ``log(hi / lo)`` (``log_width``) and, with ``lo`` at least
    1e-300, ``log(lo)`` and ``log(hi / lo)`` (``log_lo``, ``log_span``)."""

    row_of: np.ndarray
    cdf: np.ndarray
    log_width: np.ndarray
    log_lo: np.ndarray
    log_span: np.ndarray

    @classmethod
    def of(cls, h: HoldingTimes) -> _Lookup:
        T, width = len(h.touchpoints), len(h.touchpoints) + 2
        row_of = np.tile(1 + np.arange(T, dtype=np.int64)[:, None], (1, width))
        row_of[h.pair_src, h.pair_dst] = 1 + T + np.arange(len(h.pair_src))
        e = h.edges
        lo = np.maximum(e[:-1], 1e-300)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_width = np.log(e[1:] / e[:-1])
            log_lo, log_span = np.log(lo), np.log(e[1:] / lo)
        return cls(row_of.ravel(), np.ascontiguousarray(h.cdf).ravel(), log_width, log_lo,
                   log_span)


@dataclass(frozen=True, eq=False)
class _Guide:
    """The inverse CDF's tables of a :class:`HoldingTimes` (made when it first samples:
    a fit that only reads survivals, such as the censored journeys' EM, needs none; at order
    1 on 100k customers they are 7 ms of its 0.1 s): ``flat`` the table offset by
    ``2 * row`` and flattened (increasing, so one search finds a row and a bin);
    ``guide[row * cells + c]`` the last index of ``flat`` at or below ``2 * row + c / cells``
    (the answer for every ``u`` in cell ``c`` that no cdf value of the row splits)."""

    flat: np.ndarray
    cells: int
    guide: np.ndarray

    @classmethod
    def of(cls, h: HoldingTimes) -> _Guide:
        n_rows = len(h.cdf)
        flat = (h.cdf + 2.0 * np.arange(n_rows)[:, None]).ravel()
        starts = (2.0 * np.arange(n_rows)[:, None]
                  + np.arange(GUIDE_CELLS)[None, :] / GUIDE_CELLS).ravel()
        guide = np.clip(np.searchsorted(flat, starts, "right") - 1, 0, max(len(flat) - 2, 0))
        return cls(flat, GUIDE_CELLS, guide)


@dataclass(frozen=True, eq=False)
class HoldingTimes:
    """Fitted holding-time distributions (see the module docstring); immutable, stored in
    model files as data.

    ``src`` indexes :attr:`touchpoints` (the touchpoint of a journey's last event), ``dst``
    indexes :attr:`targets` (what the next event is). A pair never observed uses its
    touchpoint's distribution.

    Attributes
    ----------
    touchpoints, targets : tuple of str
    gap : float or None
    time_kind : str
    edges : ndarray, shape (n_bins + 1,)
        Support edges (:func:`support_edges`).
    cdf : ndarray, shape (1 + n_touchpoints + n_pairs, n_bins + 1)
        CDF at the edges; rows: global, each touchpoint's pooled, each observed pair.
    pair_src, pair_dst : ndarray of int64, shape (n_pairs,)
        Observed pairs, sorted by ``src * n_targets + dst``.
    pair_n : ndarray, shape (n_pairs,)
        Observed holding times of each pair (weighted; EM's censored share included).
    p_next : ndarray, shape (n_pairs,)
        P(next event is ``pair_dst`` | an event at ``pair_src``), drop-off being the rest.
    p_dropoff : ndarray, shape (n_touchpoints,)
        P(drop-off | an event at the touchpoint).

    Examples
    --------
    >>> h = fit_holding(HoldingStats("period", 20.0, ("a",), np.array([0]), np.array([1]),
    ...                 np.array([21]), np.array([5.0]), np.zeros(1), np.zeros((1, 82))))
    >>> h.targets, float(h.sf(0, 1, 0.0)), float(h.sf(0, 1, 100.0))
    (('a', 'conversion', 'churn'), 1.0, 0.0)
    """

    touchpoints: tuple[str, ...]
    gap: float | None
    time_kind: str
    edges: np.ndarray
    cdf: np.ndarray
    pair_src: np.ndarray
    pair_dst: np.ndarray
    pair_n: np.ndarray
    p_next: np.ndarray
    p_dropoff: np.ndarray

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.touchpoints) + OUTCOME_TARGETS

    @cached_property
    def _lookup(self) -> _Lookup:
        """Tables built once (the distributions are immutable): see :class:`_Lookup`."""
        return _Lookup.of(self)

    @cached_property
    def _guide(self) -> _Guide:
        """The inverse CDF's tables, built once when first sampled: see :class:`_Guide`."""
        return _Guide.of(self)

    def _rows(self, src, dst) -> np.ndarray:
        """Row of the cdf table of each (src, dst): the pair's, else its touchpoint's."""
        src, dst = np.broadcast_arrays(np.asarray(src, np.int64), np.asarray(dst, np.int64))
        T, width = len(self.touchpoints), len(self.touchpoints) + 2
        if src.size and (src.min() < 0 or src.max() >= T or dst.min() < 0
                         or dst.max() >= width):
            raise OptionError(f"holding times: src must be in 0..{T - 1} and dst in "
                              f"0..{width - 1}")
        return self._lookup.row_of[src * width + dst]

    def _cdf_at(self, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        e, look = self.edges, self._lookup
        t = np.asarray(t, float)
        b = np.clip(np.searchsorted(e, t, "right") - 1, 0, len(e) - 2)
        lo, hi = e[b], e[b + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(b == 0, t / hi, np.log(np.maximum(t, lo) / lo) / look.log_width[b])
        frac = _unit_clip(frac, nan=1.0)
        at = rows * self.cdf.shape[1] + b
        c0, c1 = look.cdf[at], look.cdf[at + 1]
        out = c0 + frac * (c1 - c0)
        return np.where(t <= 0, 0.0, np.where(t >= e[-1], 1.0, out))

    def sf(self, src, dst, t) -> np.ndarray:
        """P(T > t) of the holding time from touchpoint ``src`` to next event ``dst``
        (arrays broadcast together)."""
        src, dst, t = np.broadcast_arrays(src, dst, np.asarray(t, float))
        rows, tf = self._rows(src, dst).ravel(), t.ravel()
        out = np.empty(len(rows))
        for b0 in range(0, len(rows), _BLOCK):  # blocks that stay in cache
            blk = slice(b0, b0 + _BLOCK)
            out[blk] = 1.0 - self._cdf_at(rows[blk], tf[blk])
        return out.reshape(src.shape)[()]  # a scalar for scalars, as 1.0 - array gives

    def sample(self, src, dst, elapsed, rng: np.random.Generator) -> np.ndarray:
        """Holding times drawn given ``T > elapsed`` (inverse CDF on the table; one uniform
        per draw from ``rng``). Where the distribution has no mass beyond ``elapsed`` (at or
        beyond the end of its support) the draw is the next float above ``elapsed``."""
        src, dst, elapsed = np.broadcast_arrays(src, dst, np.asarray(elapsed, float))
        rows = self._rows(src, dst).ravel()
        r = rng.random(rows.shape)
        e = elapsed.ravel()
        out = np.empty(len(rows))
        for b0 in range(0, len(rows), _BLOCK):  # blocks that stay in cache; not per draw
            blk = slice(b0, b0 + _BLOCK)
            out[blk] = self._draw(rows[blk], e[blk], r[blk])
        return out.reshape(src.shape)

    def sample_uniform(self, src, dst, elapsed, u) -> np.ndarray:
        """:meth:`sample` at given uniforms ``u`` on [0, 1) (arrays broadcast together): the
        inverse CDF given ``T > elapsed``, item by item, so an item's time depends on its own
        ``u`` only (counter-based chance: the forecast on Dask, issue 15)."""
        src, dst, elapsed, u = np.broadcast_arrays(src, dst, np.asarray(elapsed, float),
                                                   np.asarray(u, float))
        rows = self._rows(src, dst).ravel()
        e, r = elapsed.ravel(), u.ravel()
        out = np.empty(len(rows))
        for b0 in range(0, len(rows), _BLOCK):  # blocks that stay in cache; not per draw
            blk = slice(b0, b0 + _BLOCK)
            out[blk] = self._draw(rows[blk], e[blk], r[blk])
        return out.reshape(src.shape)

    def _draw(self, rows: np.ndarray, elapsed: np.ndarray, r: np.ndarray) -> np.ndarray:
        """:meth:`sample` of 1-d items given their uniforms ``r``."""
        if np.all(elapsed <= 0):  # every move after the first: F(elapsed) = 0, u = r
            t = self._quantile(rows, r)
            return np.where(t <= elapsed, np.nextafter(elapsed, np.inf), t)
        f0 = self._cdf_at(rows, elapsed)
        t = self._quantile(rows, f0 + r * (1.0 - f0))
        return np.where((f0 >= 1.0) | (t <= elapsed), np.nextafter(elapsed, np.inf), t)

    def _quantile(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Inverse CDF of each row at ``u``: the bin is the last ``j`` with ``flat[j] <= u +
        2 row`` in the flattened, offset table (:class:`_Guide`), found by its guide table
        and checked (a binary search where the guess is not it, the same ``j``)."""
        look, guide = self._lookup, self._guide
        nb = self.cdf.shape[1]
        r, uf = rows.ravel(), u.ravel()
        key = uf + 2.0 * r
        cell = np.clip((uf * guide.cells).astype(np.int64), 0, guide.cells - 1)
        j = guide.guide[r * guide.cells + cell]
        miss = np.flatnonzero((guide.flat[j] > key) | (guide.flat[j + 1] <= key))
        if len(miss):
            j[miss] = np.searchsorted(guide.flat, key[miss], "right") - 1
        b = np.clip(j - r * nb, 0, nb - 2)
        at = r * nb + b
        c0, c1 = look.cdf[at], look.cdf[at + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = _unit_clip((uf - c0) / (c1 - c0), nan=0.0)
        t = np.exp(look.log_lo[b] + frac * look.log_span[b])
        first = np.flatnonzero(b == 0)  # the first bin [0, lo) is uniform
        t[first] = frac[first] * self.edges[1]
        return t.reshape(rows.shape)

    def mean(self, src, dst) -> np.ndarray:
        """Mean holding time of each (src, dst) (exact for the table)."""
        rows = self._rows(src, dst)
        e = self.edges
        pmf = np.diff(self.cdf, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mid = np.where(e[1:] > e[:-1], (e[1:] - e[:-1]) / np.log(e[1:] / e[:-1]), e[:-1])
        mid[0] = e[1] / 2.0
        return (pmf @ np.nan_to_num(mid))[rows]

    # -- persistence -------------------------------------------------------------------------
    def to_arrays(self) -> tuple[dict, dict, dict]:
        """``(data_vars, coords, attrs)`` of the ``holding`` group of model files, as plain
        arrays (what :meth:`to_dataset` wraps, and what the Markov model's h5py writer
        stores without xarray)."""
        return (
            {"edges": ("edge", self.edges), "cdf": (("row", "edge"), self.cdf),
             "pair_src": ("pair", self.pair_src), "pair_dst": ("pair", self.pair_dst),
             "pair_n": ("pair", self.pair_n), "p_next": ("pair", self.p_next),
             "p_dropoff": ("src", self.p_dropoff)},
            {"src": list(self.touchpoints), "dst": list(self.targets)},
            {"gap": float("nan") if self.gap is None else float(self.gap),
             "time_kind": self.time_kind, "family": "smoothed empirical",
             "bandwidth_bins": BANDWIDTH, "shrink": SHRINK})

    def to_dataset(self) -> xr.Dataset:
        """The distributions as an xarray Dataset (the ``holding`` group of model files;
        dimensions ``src`` and ``dst`` name the touchpoints and targets, which do not clash
        with a parent group's ``touchpoint``)."""
        import xarray as xr

        data, coords, attrs = self.to_arrays()
        return xr.Dataset(data, coords=coords, attrs=attrs)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> HoldingTimes:
        """Read :meth:`to_dataset`'s layout back, checking it (a model file is untrusted).

        Raises
        ------
        ModelFileError
            A missing variable, shapes that disagree, indices out of range, a CDF that is not
            non-decreasing from 0 to 1, probabilities outside [0, 1].
        """
        needed = ("src", "edges", "cdf", "pair_src", "pair_dst", "pair_n", "p_next",
                  "p_dropoff")
        missing = [v for v in needed if v not in ds.variables] + [
            a for a in ("gap", "time_kind") if a not in ds.attrs]
        if missing:
            raise ModelFileError(f"damaged holding times: missing variable {missing[0]!r}")
        try:
            tps = tuple(str(x) for x in ds["src"].values)
            edges = np.asarray(ds["edges"].values, float)
            cdf = np.asarray(ds["cdf"].values, float)
            ps, pd_ = (np.asarray(ds[v].values).astype(np.int64) for v in ("pair_src",
                                                                              "pair_dst"))
            pn, pnext = np.asarray(ds["pair_n"].values, float), np.asarray(
                ds["p_next"].values, float)
            pdrop = np.asarray(ds["p_dropoff"].values, float)
            gap = float(ds.attrs["gap"])
            kind = str(ds.attrs["time_kind"])
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"damaged holding times: {exc}") from exc
        _check_holding(tps, edges, cdf, ps, pd_, pn, pnext, pdrop, kind)
        return cls(tps, None if np.isnan(gap) else gap, kind, edges, cdf, ps, pd_, pn, pnext,
                   pdrop)


def _check_holding(tps, edges, cdf, ps, pd_, pn, pnext, pdrop, kind) -> None:
    T = len(tps)

    def fail(what: str):
        raise ModelFileError(f"damaged holding times: {what}")

    if kind not in GRID_RANGE:
        fail(f"time_kind must be one of {sorted(GRID_RANGE)} (got {kind!r})")
    if edges.ndim != 1 or len(edges) < 2 or not np.all(np.isfinite(edges)) or np.any(
            np.diff(edges) < 0) or edges[0] != 0:
        fail("edges must be finite, non-decreasing and start at 0")
    P = len(ps)
    if cdf.shape != (1 + T + P, len(edges)):
        fail(f"cdf must have shape {(1 + T + P, len(edges))} (got {cdf.shape})")
    if not np.all(np.isfinite(cdf)) or np.any(np.diff(cdf, axis=1) < -1e-12) or (
            len(cdf) and (np.abs(cdf[:, 0]).max() > 1e-9 or np.abs(cdf[:, -1] - 1).max() > 1e-9)):
        fail("every cdf row must rise from 0 to 1")
    if not (len(pd_) == len(pn) == len(pnext) == P) or len(pdrop) != T:
        fail("pair arrays and p_dropoff must match the pairs and touchpoints")
    if np.any((ps < 0) | (ps >= T)) or np.any((pd_ < 0) | (pd_ >= T + 2)):
        fail("pair_src / pair_dst out of range")
    if P > 1 and np.any(np.diff(ps * (T + 2) + pd_) <= 0):
        fail("pairs must be distinct and sorted")
    for name, x in (("p_next", pnext), ("p_dropoff", pdrop)):
        if not np.all(np.isfinite(x)) or np.any((x < 0) | (x > 1 + 1e-9)):
            fail(f"{name} must be probabilities")
    if not np.all(np.isfinite(pn)) or np.any(pn < 0):
        fail("pair_n must be counts >= 0")


def fit_holding(stats: HoldingStats, *, bandwidth: float = BANDWIDTH,
                shrink: float = SHRINK) -> HoldingTimes:
    """Fit the smoothed empirical holding-time distributions, with censored last events
    allocated by EM (see the module docstring).

    Parameters
    ----------
    stats : HoldingStats
    bandwidth : float
        Kernel bandwidth in bins (0: no smoothing).
    shrink : float
        Pseudo-observations of the parent distribution (pair -> touchpoint -> global).

    Returns
    -------
    HoldingTimes
    """
    T = len(stats.touchpoints)
    edges = support_edges(stats.time_kind, stats.gap)
    ok = _width_ok(edges)
    psrc, pdst, table = stats.pair_table()
    table = table * ok  # nothing is observed beyond the gap; guard against a changed gap
    extra = np.zeros_like(table)
    drop_extra = np.zeros(T)
    cens = stats.censored * 1.0
    kernel = smoothing_kernel(ok, bandwidth)
    groups = _rank_groups(psrc)  # the pairs of each touchpoint, for its sums
    # one BLAS thread for the whole EM (the same bits on any number of cores), entered once:
    # each entry walks threadpoolctl's libraries
    with one_blas_thread():
        for _ in range(_EM_MAX):  # EM over censored last events (a few dozen steps)
            full = table + extra
            _, _, pmf = _hierarchy(psrc, full, T, ok, kernel, shrink, groups)
            _, q, qd = _next_shares(full, psrc, stats.dropoff, drop_extra, np.zeros(T))
            new_extra, new_drop = _allocate(cens, psrc, pmf, q, qd, groups)
            change = max(np.abs(new_extra - extra).max(initial=0.0),
                         np.abs(new_drop - drop_extra).max(initial=0.0))
            extra, drop_extra = new_extra, new_drop
            if change <= _EM_TOL * max(cens.sum(), 1.0):
                break
        full = table + extra
        glob, states, pairs = _hierarchy(psrc, full, T, ok, kernel, shrink, groups)
    n_pair, q, qd = _next_shares(full, psrc, stats.dropoff, drop_extra, np.ones(T))
    pmf = np.vstack([glob[None, :], states, pairs])
    cdf = np.concatenate([np.zeros((len(pmf), 1)), np.cumsum(pmf, axis=1)], axis=1)
    cdf[:, -1] = 1.0
    cdf = np.minimum(cdf, 1.0)
    return HoldingTimes(tuple(stats.touchpoints), stats.gap, stats.time_kind, edges, cdf,
                        psrc.astype(np.int64), pdst.astype(np.int64), n_pair, q, qd)


def _next_shares(full, psrc, dropoff, drop_extra, unseen):
    """Per pair, its moves (``full`` summed over bins) and their share of its touchpoint's
    ends; per touchpoint, the drop-off's share (observed ``dropoff`` plus the censored events'
    ``drop_extra``; ``unseen`` where a touchpoint has no end: zeros inside the EM, ones in the
    fitted model)."""
    T = len(dropoff)
    n_pair = full.sum(axis=1)
    tot = np.bincount(psrc, weights=n_pair, minlength=T) + dropoff + drop_extra
    q = np.divide(n_pair, tot[psrc], out=np.zeros_like(n_pair), where=tot[psrc] > 0)
    qd = np.divide(dropoff + drop_extra, tot, out=unseen, where=tot > 0)
    return n_pair, q, qd


def _allocate(cens, psrc, pmf, q, qd, groups):
    """E-step: expected holding times (pairs x bins) and drop-offs of the censored events.

    A censored event at touchpoint ``a`` in elapsed bin ``b`` goes to pair ``p`` of ``a`` with
    probability ``q_p S_p(b) / Z`` and to drop-off with ``qd_a / Z`` (``Z`` their sum); its
    share of pair ``p`` spreads over bins ``b' > b`` as ``pmf_p(b')`` and over half of bin
    ``b``."""
    S = _upper_sf(pmf)  # (P, B) survival at each bin's middle
    Z = _add_rows(np.zeros_like(cens), groups, q[:, None] * S)
    Z += qd[:, None]
    r = np.divide(cens, Z, out=np.zeros_like(cens), where=Z > 0)  # (T, B)
    rp = r[psrc]  # (P, B)
    # weight of bin b' from censored bins b: sum_{b < b'} r_b + r_{b'} / 2 (the running sums
    # of the touchpoints' rows, then gathered: the same bits as summing the pairs' copies)
    acc = np.cumsum(r, axis=1)[psrc] - 0.5 * rp
    extra = q[:, None] * pmf * acc
    drop = qd * r.sum(axis=1)
    return extra, drop
