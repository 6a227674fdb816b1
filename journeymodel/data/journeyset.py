"""The :class:`JourneySet`: customer journeys as compact arrays, and the journey outcomes.

A journey set holds variable-length touchpoint sequences the way hmmlearn holds sequences: one
flat ``codes`` array plus ``offsets`` (CSR), so journey ``j`` is
``codes[offsets[j]:offsets[j + 1]]``. Outcome rows (conversion, churn) are not touchpoints: they
set the journey's ``outcome`` and end it. Built by :mod:`journeymodel.data.journeys` (event
logs) and :mod:`journeymodel.data.paths` (path tables); see ``docs/architecture.md``,
"Journeys".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from journeymodel.data.ledger import Ledger
from journeymodel.errors import OptionError

__all__ = ["CENSORED", "CHURN", "CONVERSION", "DROPOFF", "OUTCOMES", "JourneySet",
           "csr_event_index", "ranges", "sequence_keys"]

#: Journey outcomes; ``JourneySet.outcome`` holds indices into this tuple.
OUTCOMES = ("conversion", "churn", "dropoff", "censored")
CONVERSION, CHURN, DROPOFF, CENSORED = range(4)


def sequence_keys(codes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A 64-bit key per sequence of a CSR layout, equal for equal sequences (vectorised).

    Each position has its own fixed random multiplier, so the key is a hash of the whole
    sequence; collisions among distinct sequences are negligible (probability ~ n^2 / 2^64).
    The one hash of paths: journeys' paths (:meth:`JourneySet.path_keys`) and the stages
    model's encoded sequences both use it.

    Examples
    --------
    >>> k = sequence_keys(np.array([0, 1, 0, 1, 1]), np.array([0, 2, 4, 5, 5]))
    >>> bool(k[0] == k[1]), bool(k[0] == k[2]), bool(k[2] == k[3])
    (True, False, False)
    """
    lengths = np.diff(offsets)
    n = len(lengths)
    if len(codes) == 0:
        return lengths.astype(np.uint64)
    pos = np.arange(len(codes)) - np.repeat(offsets[:-1], lengths)
    mult = np.random.default_rng(0x5EED).integers(
        1, 2**63, size=int(pos.max()) + 1, dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        terms = (np.asarray(codes).astype(np.uint64) + np.uint64(1)) * mult[pos]
        key = np.zeros(n, np.uint64)
        nonempty = lengths > 0
        key[nonempty] = np.add.reduceat(terms, offsets[:-1][nonempty])
        key += lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return key


@dataclass(frozen=True, eq=False)
class JourneySet:
    """Customer journeys as flat arrays.

    Attributes
    ----------
    codes : ndarray of int32, shape (n_events,)
        Touchpoint codes, indices into ``touchpoints``; journeys are contiguous.
    offsets : ndarray of int64, shape (n_journeys + 1,)
        Journey ``j`` holds ``codes[offsets[j]:offsets[j + 1]]`` (may be empty: a conversion with
        no touchpoint before it).
    touchpoints : tuple of str
        Touchpoint names, sorted.
    outcome : ndarray of int8, shape (n_journeys,)
        Index into :data:`OUTCOMES`.
    weight : ndarray of float64, shape (n_journeys,)
        How many journeys each row stands for (1 for event logs; counts for aggregated paths).
    customer : ndarray of int64, shape (n_journeys,)
        Index into ``customers`` (-1 for aggregated paths, which have no customers).
    customers : ndarray of str, shape (n_customers,)
    persona : ndarray of int32, shape (n_journeys,)
        Index into ``personas``; -1 where unknown.
    personas : tuple of str
    start, end : ndarray of float64, shape (n_journeys,)
        Time of the first and of the last event (the outcome row included); NaN without times.
    value : ndarray of float64, shape (n_journeys,)
        Sum of event values of one journey (revenue of its conversion), 0 where none.
    times : ndarray of float64, shape (n_events,)
        Event times, on the axis given by ``time_kind``: ``"datetime"`` (seconds since the Unix
        epoch, UTC), ``"period"`` (plain period numbers) or ``"none"`` (aggregated paths, NaN).
    sentiment : ndarray of float64, shape (n_events,), or None
        Sentiment scaled to -1..1, NaN where unscored.
    device : ndarray of int32, shape (n_events,), or None
        Index into ``devices``; -1 where unknown.
    devices : tuple of str
    observed_until : float
        End of observation on the time axis.
    gap : float or None
        Inactivity gap used for segmentation, on the time axis.
    ledger : Ledger
        Where every input row went.
    """

    codes: np.ndarray
    offsets: np.ndarray
    touchpoints: tuple[str, ...]
    outcome: np.ndarray
    weight: np.ndarray
    customer: np.ndarray
    customers: np.ndarray
    persona: np.ndarray
    personas: tuple[str, ...]
    start: np.ndarray
    end: np.ndarray
    value: np.ndarray
    times: np.ndarray
    time_kind: str
    observed_until: float
    gap: float | None
    ledger: Ledger
    sentiment: np.ndarray | None = None
    device: np.ndarray | None = None
    devices: tuple[str, ...] = ()

    # -- sizes -----------------------------------------------------------------------------
    @property
    def n_journeys(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.codes)

    @property
    def lengths(self) -> np.ndarray:
        """Number of touchpoints of each journey, shape (n_journeys,)."""
        return np.diff(self.offsets)

    @property
    def journey_of_event(self) -> np.ndarray:
        """Journey index of each event, shape (n_events,)."""
        return np.repeat(np.arange(self.n_journeys), self.lengths)

    def __len__(self) -> int:
        return self.n_journeys

    def __repr__(self) -> str:
        return (f"JourneySet({self.n_journeys} journeys, {self.n_events} events, "
                f"{len(self.touchpoints)} touchpoints, {len(self.personas)} personas)")

    # -- selections --------------------------------------------------------------------------
    def take(self, index: np.ndarray) -> JourneySet:
        """The journeys at ``index`` (integer indices or a boolean mask), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        ev = csr_event_index(self.offsets, index)
        lengths = self.lengths[index]
        offsets = np.zeros(len(index) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        pick = lambda a: None if a is None else a[ev]  # noqa: E731
        return replace(
            self, codes=self.codes[ev], offsets=offsets, outcome=self.outcome[index],
            weight=self.weight[index], customer=self.customer[index],
            persona=self.persona[index], start=self.start[index], end=self.end[index],
            value=self.value[index], times=self.times[ev], sentiment=pick(self.sentiment),
            device=pick(self.device),
        )

    def split(self, fraction: float, seed: int | np.random.Generator = 0, stream: int = 0):
        """Randomly split journeys into (train, holdout) with ``fraction`` held out.

        A journey is held out when its :meth:`uniforms` number is below ``fraction``: the
        draw is a hash of its customer, its start and ``seed``, so a journey falls on the
        same side whether it is split with the whole log or with any part of it holding its
        customer (a Dask partition, issue 15). Splits of other ``stream`` numbers are
        independent of this one (the order selection's split of the training journeys).

        Examples
        --------
        >>> from journeymodel.data.journeys import journeys_from_codes
        >>> js = journeys_from_codes([["a"], ["b"], ["a", "b"]] * 100, ["dropoff"] * 300)
        >>> train, test = js.split(0.25, seed=1)
        >>> train.n_journeys + test.n_journeys, 50 < test.n_journeys < 100
        (300, True)
        """
        if not 0.0 < fraction < 1.0:
            raise OptionError(f"--holdout must be between 0 and 1 (got {fraction})")
        mask = self.uniforms(seed, stream) < fraction
        return self.take(~mask), self.take(mask)

    def uniforms(self, seed: int | np.random.Generator = 0, stream: int = 0) -> np.ndarray:
        """A number uniform on [0, 1) per journey: a hash of its customer id, its start time,
        ``seed`` (an integer; a Generator gives one draw) and ``stream`` (numbers of different
        streams are independent), the same for a journey in the whole log and in any part of
        it. Aggregated paths (no customer) hash their position.
        """
        from journeymodel.data.hashing import splitmix, text_hashes

        if isinstance(seed, np.random.Generator):
            seed = int(seed.integers(2**63))
        ids = text_hashes(self.customers)  # FNV-1a of each id's UTF-8 (no Arrow, no pandas)
        n = len(ids)
        who = np.where(self.customer >= 0, ids[np.maximum(self.customer, 0)] if n else 0,
                       np.arange(self.n_journeys)).astype(np.uint64)
        start = np.ascontiguousarray(self.start, np.float64).view(np.uint64)
        key = splitmix(splitmix(np.full(1, seed % 2**64, np.uint64))
                       ^ np.uint64(stream % 2**64))
        h = splitmix(who ^ splitmix(start ^ key))
        return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53

    # -- summaries ---------------------------------------------------------------------------
    def outcome_counts(self) -> dict[str, float]:
        """Weighted number of journeys per outcome."""
        counts = np.bincount(self.outcome, weights=self.weight, minlength=len(OUTCOMES))
        return {name: _num(c) for name, c in zip(OUTCOMES, counts, strict=True)}

    def touchpoint_counts(self) -> dict[str, float]:
        w = np.repeat(self.weight, self.lengths)
        counts = np.bincount(self.codes, weights=w, minlength=len(self.touchpoints))
        return {name: _num(c) for name, c in zip(self.touchpoints, counts, strict=True)}

    def persona_customers(self) -> dict[str, int]:
        """Number of distinct customers per persona."""
        known = (self.persona >= 0) & (self.customer >= 0)
        pairs = np.unique(np.stack([self.customer[known], self.persona[known]]), axis=1)
        counts = np.bincount(pairs[1], minlength=len(self.personas)) if pairs.size else (
            np.zeros(len(self.personas), int))
        return {p: int(c) for p, c in zip(self.personas, counts, strict=True)}

    def path_keys(self) -> np.ndarray:
        """A 64-bit key per journey, equal for equal paths (see :func:`sequence_keys`)."""
        return sequence_keys(self.codes, self.offsets)

    def path_strings(self, sep: str = " > ") -> np.ndarray:
        """Each journey's path as text, e.g. ``"email > web"`` (for display, not hot paths)."""
        names = np.asarray(self.touchpoints, dtype=object)
        parts = np.split(names[self.codes], self.offsets[1:-1])
        return np.array([sep.join(p) for p in parts], dtype=object)


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def ranges(cnt: np.ndarray) -> np.ndarray:
    """``concatenate([arange(c) for c in cnt])`` without a loop.

    >>> ranges(np.array([2, 0, 3])).tolist()
    [0, 1, 0, 1, 2]
    """
    total = int(cnt.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(cnt)
    return np.arange(total) - np.repeat(ends - cnt, cnt)


def csr_event_index(offsets: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Flat event indices of the journeys at ``index``, concatenated (vectorised gather)."""
    starts = offsets[:-1][index]
    lengths = offsets[1:][index] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + shift

