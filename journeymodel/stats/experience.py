"""The experience statistic: sentiment moments and what follows each switch, additive.

What :mod:`journeymodel.analysis.experience` turns into emotion curves and switch outcomes,
counted once from the journeys' events (vectorised, no loop over events or journeys). Means and
sums of squared deviations merge by Chan's parallel formula (:class:`Moments`); counts add;
touchpoints, devices and stage names of two parts are aligned on their union first.

Arrivals are the steps of a journey: the first touchpoint arrives from the start, every later
one from the touchpoint before it. What follows an arrival is *known* unless it is the last
touchpoint of a censored journey; it is a *drop-off* when it is the last touchpoint of a journey
that dropped off. Arrival pairs are kept for every (from, to) pair with a known sequel or a
scored arrival, so that a pair known in one part and only in flight in another adds up.

References
----------
.. [1] Chan, T. F., Golub, G. H., LeVeque, R. J. (1979). Updating formulae and a pairwise
   algorithm for computing sample variances. Stanford CS report STAN-CS-79-773.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeymodel.data.journeyset import CENSORED, CONVERSION, DROPOFF, JourneySet
from journeymodel.errors import OptionError
from journeymodel.stats.additive import Additive
from journeymodel.stats.vocab import recode, union

#: Positions 1 .. MAX_POSITION - 1 on their own, the last bin holds MAX_POSITION and later.
MAX_POSITION = 20
#: Pair keys up to this many (or twice the events) are counted in dense arrays; beyond it, on
#: the unique keys that occur (50,000 touchpoints make 2.5e9 possible pairs: 18.6 GiB dense).
DENSE_KEYS = 1 << 20


@dataclass(frozen=True, eq=False)
class Moments:
    """Weighted moments of values per group: sum of weights ``sw``, of squared weights
    ``sw2``, weighted ``mean`` (NaN where ``sw`` is 0) and sum of weighted squared deviations
    from it, ``ss``; arrays of shape (n_groups,).

    ``a + b`` (same groups) is Chan's parallel formula: exact for ``sw`` and ``sw2``, to float
    rounding for ``mean`` and ``ss``; a side with no weight in a group leaves the other as it is.

    Examples
    --------
    >>> a = moments(np.array([1.0, 3.0]), np.array([0, 0]), 1)
    >>> b = moments(np.array([5.0]), np.array([0]), 1)
    >>> s = a + b
    >>> s.sw.tolist(), s.mean.tolist(), s.ss.tolist()
    ([3.0], [3.0], [8.0])
    """

    sw: np.ndarray
    sw2: np.ndarray
    mean: np.ndarray
    ss: np.ndarray

    def __add__(self, other: Moments) -> Moments:
        sw = self.sw + other.sw
        none_a, none_b = self.sw <= 0, other.sw <= 0
        with np.errstate(invalid="ignore", divide="ignore"):
            ma, mb = np.where(none_a, 0.0, self.mean), np.where(none_b, 0.0, other.mean)
            mean = (self.sw * ma + other.sw * mb) / sw
            delta = mb - ma
            ss = self.ss + other.ss + delta * delta * (self.sw * other.sw / sw)
        mean = np.where(none_a, other.mean, np.where(none_b, self.mean, mean))
        ss = np.where(none_a, other.ss, np.where(none_b, self.ss, ss))
        return Moments(sw, self.sw2 + other.sw2, mean, ss)

    @classmethod
    def empty(cls, n_groups: int) -> Moments:
        """Moments of no values: weights 0, means NaN."""
        zero = np.zeros(n_groups)
        return cls(zero, zero.copy(), np.full(n_groups, np.nan), zero.copy())

    def take(self, index: np.ndarray) -> Moments:
        return Moments(self.sw[index], self.sw2[index], self.mean[index], self.ss[index])

    def placed(self, index: np.ndarray, n_groups: int) -> Moments:
        """These groups at positions ``index`` among ``n_groups`` (the others empty)."""
        out = Moments.empty(n_groups)
        for mine, full in zip(self.arrays(), out.arrays(), strict=True):
            full[index] = mine
        return out

    def arrays(self) -> tuple[np.ndarray, ...]:
        """``(sw, sw2, mean, ss)``."""
        return self.sw, self.sw2, self.mean, self.ss

    def equals(self, other: Moments, rtol: float = 1e-9) -> bool:
        return all(np.allclose(a, b, rtol=rtol, atol=1e-12, equal_nan=True)
                   for a, b in zip(self.arrays(), other.arrays(), strict=True))


def moments(values: np.ndarray, group: np.ndarray, n_groups: int,
            weight: np.ndarray | None = None) -> Moments:
    """The :class:`Moments` per group of the finite ``values`` (groups < 0 are left out; with
    ``weight``, so are values of weight 0)."""
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
    return Moments(sw, sw2, mean, ss)


@dataclass(frozen=True, eq=False)
class PairCounts:
    """Arrivals per (from, to) pair: how many had a known sequel, dropped off, converted, and
    the moments of their sentiment. ``frm`` is -1 for the start (touchpoint pairs); pairs are
    sorted by (from, to) and distinct."""

    frm: np.ndarray
    to: np.ndarray
    n: np.ndarray
    dropped: np.ndarray
    converted: np.ndarray
    sentiment: Moments

    def merged(self, other: PairCounts, mine: np.ndarray, theirs: np.ndarray,
               width: int) -> PairCounts:
        """Both sides' pairs with codes mapped through ``mine`` / ``theirs`` into a vocabulary
        of ``width`` names, summed pair by pair."""
        ka = (recode(self.frm, mine).astype(np.int64) + 1) * width + recode(self.to, mine)
        kb = (recode(other.frm, theirs).astype(np.int64) + 1) * width + recode(other.to, theirs)
        keys = np.union1d(ka, kb)
        ia, ib = np.searchsorted(keys, ka), np.searchsorted(keys, kb)
        m = len(keys)

        def add(x, y):
            out = np.zeros(m)
            out[ia] += x
            out[ib] += y
            return out

        return PairCounts(keys // width - 1, keys % width, add(self.n, other.n),
                          add(self.dropped, other.dropped),
                          add(self.converted, other.converted),
                          self.sentiment.placed(ia, m) + other.sentiment.placed(ib, m))

    def equals(self, other: PairCounts, rtol: float) -> bool:
        return (np.array_equal(self.frm, other.frm) and np.array_equal(self.to, other.to)
                and all(np.allclose(a, b, rtol=rtol) for a, b in (
                    (self.n, other.n), (self.dropped, other.dropped),
                    (self.converted, other.converted)))
                and self.sentiment.equals(other.sentiment, rtol))


@dataclass(frozen=True, eq=False)
class ExperienceStats(Additive):
    """Sentiment moments and switch outcomes of journeys: the statistic behind the emotion
    curves and pain points (:func:`journeymodel.analysis.experience.experience_dataset`).

    Attributes
    ----------
    touchpoints, devices : tuple of str
    n_events, scored_events : int
        Touchpoints, and those with a sentiment score.
    has_sentiment, has_device : bool
        Some event has a score / a known device.
    tp_events : ndarray, shape (n_touchpoints,)
        Weighted touchpoints per touchpoint.
    tp, pos, overall : Moments
        Sentiment per touchpoint, per position (1 .. :data:`MAX_POSITION`, the last bin holding
        the later ones) and overall (one group).
    tp_journeys : ndarray of int64, shape (n_touchpoints,)
        Journeys with a scored event at each touchpoint.
    pairs, device_pairs : PairCounts
        Per (from, to) touchpoint pair (from -1: the start) and device pair.
    stages : tuple of str or None
        Stage names (stages model only); then ``stage_events`` (expected touchpoints per stage),
        ``stage`` (sentiment moments weighted by stage probability) and ``stage_journeys``
        (journeys with a scored event whose likeliest stage it is).

    Examples
    --------
    >>> from dataclasses import replace
    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> def scored(paths, outcomes, sentiment):
    ...     js = journeys_from_codes(paths, outcomes)
    ...     return replace(js, sentiment=np.array(sentiment))
    >>> a = experience_stats(scored([["web", "call"]], ["dropoff"], [0.5, -0.5]))
    >>> b = experience_stats(scored([["email"]], ["conversion"], [1.0]))
    >>> s = a + b
    >>> s.touchpoints, s.tp.mean.tolist(), float(s.overall.mean[0])
    (('call', 'email', 'web'), [-0.5, 1.0, 0.5], 0.3333333333333333)
    >>> s.pairs.frm.tolist(), s.pairs.to.tolist(), s.pairs.dropped.tolist()
    ([-1, -1, 2], [1, 2, 0], [0.0, 0.0, 1.0])
    >>> sum([b, a]).equals(s)
    True
    """

    touchpoints: tuple[str, ...]
    devices: tuple[str, ...]
    n_events: int
    scored_events: int
    has_sentiment: bool
    has_device: bool
    tp_events: np.ndarray
    tp: Moments
    tp_journeys: np.ndarray
    pos: Moments
    overall: Moments
    pairs: PairCounts
    device_pairs: PairCounts
    stages: tuple[str, ...] | None = None
    stage_events: np.ndarray | None = None
    stage: Moments | None = None
    stage_journeys: np.ndarray | None = None

    def _add(self, other: ExperienceStats) -> ExperienceStats:
        if (self.stages is None) != (other.stages is None):
            raise OptionError("can only add experience statistics that both have stages or "
                              "both have none (a stages model's and a Markov model's differ)")
        names, mine, theirs = union(self.touchpoints, other.touchpoints)
        devices, dmine, dtheirs = union(self.devices, other.devices)
        T = len(names)

        def per_tp(x, y):
            return _placed_sum(T, mine, x, theirs, y)

        stage_parts = {}
        if self.stages is not None:
            stages, smine, stheirs = union(self.stages, other.stages)
            K = len(stages)

            def per_stage(x, y):
                return _placed_sum(K, smine, x, stheirs, y)

            stage_parts = dict(
                stages=stages, stage_events=per_stage(self.stage_events, other.stage_events),
                stage=self.stage.placed(smine, K) + other.stage.placed(stheirs, K),
                stage_journeys=per_stage(self.stage_journeys, other.stage_journeys))
        return ExperienceStats(
            touchpoints=names, devices=devices, n_events=self.n_events + other.n_events,
            scored_events=self.scored_events + other.scored_events,
            has_sentiment=self.has_sentiment or other.has_sentiment,
            has_device=self.has_device or other.has_device,
            tp_events=per_tp(self.tp_events, other.tp_events),
            tp=self.tp.placed(mine, T) + other.tp.placed(theirs, T),
            tp_journeys=per_tp(self.tp_journeys, other.tp_journeys),
            pos=self.pos + other.pos, overall=self.overall + other.overall,
            pairs=self.pairs.merged(other.pairs, mine, theirs, T),
            device_pairs=self.device_pairs.merged(other.device_pairs, dmine, dtheirs,
                                                  len(devices)),
            **stage_parts)


    def equals(self, other: ExperienceStats, rtol: float = 1e-9) -> bool:
        """Same statistics (float sums up to ``rtol``), compared on the union of names."""
        if (self.stages is None) != (other.stages is None):
            return False
        a, b = self + _nothing_like(other), other + _nothing_like(self)
        same = ((a.touchpoints, a.devices, a.n_events, a.scored_events, a.has_sentiment,
                 a.has_device, a.stages) == (b.touchpoints, b.devices, b.n_events,
                                             b.scored_events, b.has_sentiment, b.has_device,
                                             b.stages)
                and np.allclose(a.tp_events, b.tp_events, rtol=rtol)
                and np.array_equal(a.tp_journeys, b.tp_journeys)
                and a.tp.equals(b.tp, rtol) and a.pos.equals(b.pos, rtol)
                and a.overall.equals(b.overall, rtol) and a.pairs.equals(b.pairs, rtol)
                and a.device_pairs.equals(b.device_pairs, rtol))
        if not same or a.stages is None:
            return same
        return (np.allclose(a.stage_events, b.stage_events, rtol=rtol)
                and a.stage.equals(b.stage, rtol)
                and np.array_equal(a.stage_journeys, b.stage_journeys))



def _placed_sum(n: int, ia: np.ndarray, x: np.ndarray, ib: np.ndarray, y: np.ndarray
                ) -> np.ndarray:
    """``x`` and ``y`` (per name of two vocabularies) added on their union of ``n`` names."""
    out = np.zeros(n, np.result_type(x, y))
    out[ia] += x
    out[ib] += y
    return out


def _no_pairs() -> PairCounts:
    empty = np.zeros(0)
    return PairCounts(np.zeros(0, np.int64), np.zeros(0, np.int64), empty, empty.copy(),
                      empty.copy(), Moments.empty(0))


def _nothing_like(stats: ExperienceStats) -> ExperienceStats:
    """The statistic of no journeys, in ``stats``' vocabularies (for comparisons)."""
    T = len(stats.touchpoints)
    stage = {}
    if stats.stages is not None:
        K = len(stats.stages)
        stage = dict(stages=stats.stages, stage_events=np.zeros(K), stage=Moments.empty(K),
                     stage_journeys=np.zeros(K, np.int64))
    return ExperienceStats(stats.touchpoints, stats.devices, 0, 0, False, False, np.zeros(T),
                           Moments.empty(T), np.zeros(T, np.int64), Moments.empty(MAX_POSITION),
                           Moments.empty(1), _no_pairs(), _no_pairs(), **stage)


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


def dense(n_keys: int, n_events: int) -> bool:
    """Whether pair keys are counted in dense arrays (see :data:`DENSE_KEYS`)."""
    return n_keys <= max(DENSE_KEYS, 2 * n_events)


def _pair_counts(key, width, n_keys, known, dropped, converted, w, sent) -> PairCounts:
    """Arrivals, drop-offs and conversions with a known sequel per pair key (keys -1: no pair),
    and the sentiment of every arrival; ``w`` None means unit weights (integer counting, no
    weight arrays), ``sent`` None no sentiment. Keys are ``(from + 1) * width + to``.

    Memory grows with the events and the pairs that occur, not with ``n_keys`` (the square of
    the alphabet): above :data:`DENSE_KEYS` the keys are counted on their unique values.
    """
    valid = key >= 0
    if dense(n_keys, len(key)):
        present = np.zeros(n_keys, bool)
        present[key[valid]] = True
        keys = np.flatnonzero(present)
        lookup = np.full(n_keys, -1, np.int64)
        lookup[keys] = np.arange(len(keys))
        group = np.where(valid, lookup[np.where(valid, key, 0)], -1)
    else:
        keys, inv = np.unique(key[valid], return_inverse=True)
        group = np.full(len(key), -1, np.int64)
        group[valid] = inv
    m = len(keys)
    k = known & valid
    gk = group[k]
    if w is None:
        n = np.bincount(gk, minlength=m).astype(np.float64)
        d = np.bincount(gk[dropped[k]], minlength=m).astype(np.float64)
        c = np.bincount(gk[converted[k]], minlength=m).astype(np.float64)
    else:
        wk = w[k]
        n = np.bincount(gk, wk, m)
        d = np.bincount(gk, wk * dropped[k], m)
        c = np.bincount(gk, wk * converted[k], m)
    mom = Moments.empty(m) if sent is None else moments(sent, group, m, w)
    keep = (n > 0) | (mom.sw > 0)
    keys = keys[keep]
    return PairCounts(keys // width - 1, keys % width, n[keep], d[keep], c[keep],
                      mom.take(keep))


def experience_stats(journeys: JourneySet, *, stage_posterior: np.ndarray | None = None,
                     stage_names: list[str] | None = None) -> ExperienceStats:
    """The :class:`ExperienceStats` of ``journeys`` (numpy only: no xarray or scipy import).

    Parameters
    ----------
    journeys : JourneySet
    stage_posterior : ndarray, shape (n_events, K), optional
        Probability of each stage at each touchpoint (stages model); adds the stages' moments.
    stage_names : list of str, optional
        Labels of the K stages (default ``S1`` .. ``SK``).
    """
    T = len(journeys.touchpoints)
    jid, pos, prev, known, dropped, converted = _arrivals(journeys)
    codes = journeys.codes
    unit = bool(np.all(journeys.weight == 1.0))
    w = None if unit else journeys.weight[jid]
    sent = journeys.sentiment
    has_sentiment = sent is not None and bool(np.isfinite(sent).any())
    tp_events = (np.bincount(codes, minlength=T).astype(np.float64) if unit
                 else np.bincount(codes, w, T))
    key = (prev.astype(np.int64) + 1) * T + codes
    pairs = _pair_counts(key, T, (T + 1) * T, known, dropped, converted, w,
                         sent if has_sentiment else None)
    scored_events, tp_journeys = 0, np.zeros(T, np.int64)
    tp, pos_m, overall = Moments.empty(T), Moments.empty(MAX_POSITION), Moments.empty(1)
    if has_sentiment:
        scored = np.isfinite(sent)
        scored_events = int(scored.sum())
        tp = moments(sent, codes, T, w)
        tp_journeys = _distinct_journeys(jid[scored], codes[scored], journeys.n_journeys, T)
        pos_m = moments(sent, np.minimum(pos, MAX_POSITION - 1), MAX_POSITION, w)
        overall = moments(sent, np.zeros(len(sent), np.int8), 1, w)
    devices = tuple(journeys.devices)
    has_device = journeys.device is not None and bool((journeys.device >= 0).any())
    device_pairs = _no_pairs()
    if has_device:
        D = len(devices)
        dev = journeys.device.astype(np.int64)
        pdev = np.empty_like(dev)
        pdev[1:] = dev[:-1]
        pdev[pos == 0] = -1
        dkey = np.where((dev >= 0) & (pdev >= 0), (pdev + 1) * D + dev, -1)
        device_pairs = _pair_counts(dkey, D, (D + 1) * D, known, dropped, converted, w, None)
    stage = {}
    if stage_posterior is not None:
        stage = _stage_parts(journeys, jid, w, stage_posterior, stage_names, has_sentiment)
    return ExperienceStats(
        touchpoints=tuple(journeys.touchpoints), devices=devices,
        n_events=int(journeys.n_events), scored_events=scored_events,
        has_sentiment=has_sentiment, has_device=has_device, tp_events=tp_events, tp=tp,
        tp_journeys=np.asarray(tp_journeys, np.int64), pos=pos_m, overall=overall,
        pairs=pairs, device_pairs=device_pairs, **stage)


def _stage_parts(journeys: JourneySet, jid, w, stage_posterior, stage_names, has_sentiment):
    """The stages' fields of :class:`ExperienceStats` (loop over the K stages only)."""
    K = stage_posterior.shape[1]
    wj = np.ones(journeys.n_events) if w is None else w
    stage = Moments.empty(K)
    stage_journeys = np.zeros(K, np.int64)
    if has_sentiment:
        sent = journeys.sentiment
        zero = np.zeros(len(sent), np.int8)
        parts = [moments(sent, zero, 1, wj * stage_posterior[:, k]) for k in range(K)]
        stage = Moments(*(np.concatenate(x) for x in zip(*(p.arrays() for p in parts),
                                                          strict=True)))
        scored = np.isfinite(sent)
        top = np.argmax(stage_posterior, axis=1)
        stage_journeys = _distinct_journeys(jid[scored], top[scored], journeys.n_journeys, K)
    return dict(stages=tuple(stage_names or [f"S{k + 1}" for k in range(K)]),
                stage_events=(wj[:, None] * stage_posterior).sum(axis=0), stage=stage,
                stage_journeys=np.asarray(stage_journeys, np.int64))
