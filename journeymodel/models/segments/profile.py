"""What distinguishes the segments: sizes, outcomes, touchpoint mix, paths and transitions per
segment (read from the journeys weighted by each customer's segment probabilities), the
segments' canonical order and their names.

Everything here takes the distinct sequences of :class:`~journeymodel.stats.segments.
SegmentStats` and ``weights`` of shape (n_sequences, K): the expected number of journeys of each
sequence in each segment (the customers' posterior membership summed over who made it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from journeymodel.models.segments.em import CHAIN_EXITS, transition_matrix
from journeymodel.stats.segments import distinct_index
from journeymodel.stats.sequences import DIRECT, N_STATUS, UNKNOWN, SequenceStats

#: Paths and transitions kept per segment in the model file.
TOP_PATHS = 5
TOP_TRANSITIONS = 8
#: A path is characteristic of a segment when it is at least this share of its journeys ...
MIN_PATH_SHARE = 0.005
#: ... and more common there than over all journeys (a lift above this; the largest segment's
#: lifts are near 1, so a higher bar left it without characteristic paths on the demo data).
MIN_LIFT = 1.0
#: Conversion rate this far above (below) the overall one names a segment "high" ("low").
RATE_MARGIN = 0.15


@dataclass
class Profile:
    """Per-segment figures, segments in the order fitted (see :func:`profile`).

    Attributes
    ----------
    customers : ndarray, shape (K,)
        Expected customers (sum of membership probabilities).
    journeys : ndarray, shape (K,)
    outcomes : ndarray, shape (K, 4)
        Expected journeys ending in conversion, churn, drop-off, or still in flight.
    touchpoints : ndarray, shape (K, n_symbols)
        Expected touchpoint steps per symbol (``(direct)`` last).
    paths : DataFrame
        ``segment`` (fitted index), ``kind`` (``top``: most made; ``characteristic``: most
        over-represented), ``rank``, ``path``, ``journeys``, ``share``, ``lift``.
    transitions : DataFrame
        ``segment``, ``rank``, ``from``, ``to``, ``probability``, ``journeys`` (expected moves):
        the most made first-order moves of each segment.
    """

    customers: np.ndarray
    journeys: np.ndarray
    outcomes: np.ndarray
    touchpoints: np.ndarray
    paths: pd.DataFrame
    transitions: pd.DataFrame

    @property
    def conversion_rate(self) -> np.ndarray:
        """Conversions per ended journey (in-flight journeys left out), NaN without any."""
        ended = self.outcomes[:, :3].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ended > 0, self.outcomes[:, 0] / ended, np.nan)

    def permuted(self, order: np.ndarray) -> Profile:
        """The same figures with the segments in ``order`` (new index of fitted ``order[i]`` is
        ``i``)."""
        new = np.empty(len(order), np.int64)
        new[order] = np.arange(len(order))
        paths, trans = self.paths.copy(), self.transitions.copy()
        paths["segment"] = new[paths["segment"].to_numpy()]
        trans["segment"] = new[trans["segment"].to_numpy()]
        sort = ["segment", "kind", "rank"]
        return Profile(self.customers[order], self.journeys[order], self.outcomes[order],
                       self.touchpoints[order],
                       paths.sort_values(sort, kind="stable").reset_index(drop=True),
                       trans.sort_values(["segment", "rank"], kind="stable")
                       .reset_index(drop=True))


def profile(seqs: SequenceStats, responsibilities: np.ndarray, weights: np.ndarray) -> Profile:
    """The :class:`Profile` of K segments from the customers' ``responsibilities`` (n_customers,
    K) and the sequences' expected journeys per segment ``weights`` (n_sequences, K); censored
    sequences that differ only by their time silent are one path here."""
    seqs, weights = merge_elapsed(seqs, weights)
    lengths = np.diff(seqs.offsets)
    seq_of_step = np.repeat(np.arange(seqs.n_sequences), lengths)
    n_sym = len(seqs.symbols)
    last = seqs.codes[seqs.offsets[1:] - 1] % N_STATUS if seqs.n_sequences else np.zeros(0, int)
    outcome = np.where(last == UNKNOWN, 3, last - 1)  # conversion, churn, dropoff, censored
    ends = sp.csr_matrix((np.ones(len(outcome)), (np.arange(len(outcome)), outcome)),
                         shape=(len(outcome), 4))
    steps = sp.csr_matrix((np.ones(len(seqs.codes)), (seq_of_step, seqs.codes // N_STATUS)),
                          shape=(seqs.n_sequences, n_sym))
    return Profile(responsibilities.sum(axis=0), weights.sum(axis=0),
                   np.asarray(ends.T @ weights).T, np.asarray(steps.T @ weights).T,
                   _paths(seqs, weights), _transitions(seqs, weights))


def merge_elapsed(seqs: SequenceStats, weights: np.ndarray
                  ) -> tuple[SequenceStats, np.ndarray]:
    """``seqs`` with identical sequences in different elapsed-time bins merged (in order of
    first appearance) and their rows of ``weights`` summed."""
    if (seqs.elapsed_bins < 0).all():
        return seqs, weights
    codes, offsets, index = distinct_index(seqs.codes, seqs.offsets)
    merged = np.zeros((len(offsets) - 1, weights.shape[1]))
    np.add.at(merged, index, weights)
    return (SequenceStats(seqs.touchpoints, codes, offsets,
                          np.bincount(index, seqs.weight, minlength=len(offsets) - 1)), merged)


def _paths(seqs: SequenceStats, weights: np.ndarray) -> pd.DataFrame:
    """The top and characteristic paths of each segment (a few sequences each: the path text is
    built for those only)."""
    total = weights.sum(axis=0)
    overall = weights.sum(axis=1) / max(weights.sum(), 1e-300)
    rows = []
    for k in range(weights.shape[1]):  # K is small: one pass per segment
        share = weights[:, k] / max(total[k], 1e-300)
        with np.errstate(invalid="ignore", divide="ignore"):
            lift = np.where(overall > 0, share / overall, 0.0)
        top = np.lexsort((np.arange(len(share)), -share))[:TOP_PATHS]
        ok = (share >= MIN_PATH_SHARE) & (lift > MIN_LIFT)
        char = np.flatnonzero(ok)[np.lexsort((np.flatnonzero(ok), -(share * np.log(
            np.maximum(lift, 1.0)))[ok]))][:TOP_PATHS]
        for kind, picked in (("top", top), ("characteristic", char)):
            for rank, i in enumerate(picked):
                if weights[i, k] <= 0:
                    continue
                rows.append((k, kind, rank + 1, path_text(seqs, int(i)), weights[i, k],
                             share[i], lift[i]))
    return pd.DataFrame(rows, columns=["segment", "kind", "rank", "path", "journeys", "share",
                                       "lift"]).astype({"segment": np.int64, "rank": np.int64})


def path_text(seqs: SequenceStats, i: int) -> str:
    """Sequence ``i`` as ``web > email > conversion`` (a censored journey ends in ``...``)."""
    codes = seqs.codes[seqs.offsets[i]:seqs.offsets[i + 1]]
    names = [seqs.symbols[c // N_STATUS] for c in codes]
    status = int(codes[-1] % N_STATUS) if len(codes) else UNKNOWN
    tail = ["..."] if status == UNKNOWN else [CHAIN_EXITS[status - 1]]
    return " > ".join([n for n in names if n != DIRECT] + tail)


def _transitions(seqs: SequenceStats, weights: np.ndarray) -> pd.DataFrame:
    """Each segment's most made first-order moves (touchpoint to touchpoint or exit)."""
    n_x = len(seqs.symbols)
    width = n_x + 3
    counts = np.asarray(transition_matrix(seqs.codes, seqs.offsets, n_x).T @ weights).T
    rows_total = counts.reshape(len(counts), n_x + 1, width).sum(axis=2)
    names_from = [*seqs.symbols, "(start)"]
    names_to = [*seqs.symbols, *CHAIN_EXITS]
    rows = []
    for k in range(len(counts)):
        top = np.lexsort((np.arange(counts.shape[1]), -counts[k]))[:TOP_TRANSITIONS]
        for rank, f in enumerate(top):
            if counts[k, f] <= 0:
                continue
            r, c = divmod(int(f), width)
            rows.append((k, rank + 1, names_from[r], names_to[c],
                         counts[k, f] / max(rows_total[k, r], 1e-300), counts[k, f]))
    return pd.DataFrame(rows, columns=["segment", "rank", "from", "to", "probability",
                                       "journeys"]).astype({"segment": np.int64,
                                                            "rank": np.int64})


def canonical_order(prof: Profile) -> np.ndarray:
    """Segments by expected customers, largest first; ties by conversion rate (higher first),
    then by the touchpoint mix (lexicographic), then as fitted."""
    mix = prof.touchpoints / np.maximum(prof.touchpoints.sum(axis=1, keepdims=True), 1e-300)
    keys = [np.arange(len(mix))] + [-mix[:, j] for j in range(mix.shape[1] - 1, -1, -1)]
    keys += [-np.nan_to_num(np.round(prof.conversion_rate, 12), nan=-1.0),
             -np.round(prof.customers, 9)]
    return np.lexsort(keys)


def segment_names(prof: Profile, symbols: tuple[str, ...]) -> list[str]:
    """``store+call high conversion``: the two touchpoints most over-represented in the segment
    (among those making at least 5% of its steps; ``(direct)`` left out) and the conversion rate
    against the overall one (``high``/``low`` beyond 15% relative, nothing in between). Names are
    made unique by a number (``web+app 2``)."""
    mix = prof.touchpoints[:, :-1] / np.maximum(prof.touchpoints[:, :-1].sum(1, keepdims=True),
                                                1e-300)
    overall = prof.touchpoints[:, :-1].sum(0) / max(prof.touchpoints[:, :-1].sum(), 1e-300)
    ended = prof.outcomes[:, :3].sum()
    rate_all = prof.outcomes[:, 0].sum() / ended if ended > 0 else np.nan
    names: list[str] = []
    for k in range(len(mix)):
        with np.errstate(invalid="ignore", divide="ignore"):
            lift = np.where((mix[k] >= 0.05) & (overall > 0), mix[k] / overall, -1.0)
        best = [i for i in np.lexsort((np.arange(len(lift)), -lift))[:2] if lift[i] > 0]
        base = "+".join(symbols[i] for i in best) or "(direct)"
        rate = prof.conversion_rate[k]
        level = ("" if not np.isfinite(rate) or not np.isfinite(rate_all) else
                 " high conversion" if rate > rate_all * (1 + RATE_MARGIN) else
                 " low conversion" if rate < rate_all * (1 - RATE_MARGIN) else "")
        name, n = base + level, 2
        while name in names:
            name, n = f"{base}{level} {n}", n + 1
        names.append(name)
    return names
