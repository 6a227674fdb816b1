"""Held-out conversion scores of a Markov model (``fit markov --holdout``), as an additive
statistic: scores of the parts of a held-out set add up to those of the whole (issue 15).

Each held-out journey that has ended is cut after a number of its touchpoints drawn uniformly
from 1..L (0 when L = 0) and scored with the chain's P(conversion) from where it stood then
(:func:`~journeymodel.models.markov.predict.state_of_journeys`; a journey in an unseen state
gets the start's). The draw is a hash of the journey (:meth:`~journeymodel.data.journeyset.
JourneySet.uniforms`, stream :data:`CUT_STREAM`), so a journey is cut at the same point in the
whole log and in a Dask partition.

Log-loss is a weighted sum over journeys; AUC (the weighted Mann-Whitney probability that a
converting journey scores above a non-converting one, ties half) is read from the weights of
converting and of other journeys at each distinct score. A chain gives at most one score per
state, so that table is small and it adds exactly (:class:`HoldoutStats`): the AUC of the sum
is the AUC of the whole held-out set, no score gathered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.data.journeyset import CENSORED, CONVERSION, csr_event_index
from journeymodel.errors import OptionError
from journeymodel.stats.additive import Additive

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.data.journeyset import JourneySet
    from journeymodel.models.markov.model import MarkovJourneyModel

#: The :meth:`~journeymodel.data.journeyset.JourneySet.uniforms` stream of the cut points
#: (independent of the held-out split's, stream 0).
CUT_STREAM = 2


@dataclass(frozen=True, eq=False)
class HoldoutStats(Additive):
    """Held-out conversion scores, additive.

    Attributes
    ----------
    n_journeys : int
        Completed held-out journeys scored.
    unknown_state : int
        Of them, journeys in a state the chain does not know (scored from the start).
    weight : float
        Their summed weight.
    scores : ndarray of float64
        Sorted distinct scores (P(conversion) at the cut).
    positive, negative : ndarray of float64
        Weight of converting and of other journeys at each score.

    The log-loss is computed from the table of scores (:meth:`log_loss`), not added up over
    journeys: a sum of partial float sums depends on how the journeys were split, the table
    (weights per distinct score, exact for whole weights) does not, so a log scored in any
    number of partitions prints the log-loss of one process bit for bit.

    Examples
    --------
    Two journeys scored 0.8 (converted) and 0.3 (did not), then one scored 0.3 (converted):
    the converting ones rank above the other with probability (1 + 0.5) / 2.

    >>> a = HoldoutStats(2, 0, 2.0, np.array([0.3, 0.8]), np.array([0.0, 1.0]),
    ...                  np.array([1.0, 0.0]))
    >>> b = HoldoutStats(1, 0, 1.0, np.array([0.3]), np.array([1.0]), np.array([0.0]))
    >>> (a + b).auc()
    0.75
    """

    n_journeys: int
    unknown_state: int
    weight: float
    scores: np.ndarray
    positive: np.ndarray
    negative: np.ndarray

    def _add(self, other: HoldoutStats) -> HoldoutStats:
        scores = np.union1d(self.scores, other.scores)
        pos, neg = np.zeros(len(scores)), np.zeros(len(scores))
        for part in (self, other):
            at = np.searchsorted(scores, part.scores)
            pos[at] += part.positive
            neg[at] += part.negative
        return HoldoutStats(self.n_journeys + other.n_journeys,
                            self.unknown_state + other.unknown_state,
                            self.weight + other.weight, scores, pos, neg)

    def auc(self) -> float:
        """Weighted Mann-Whitney AUC (NaN without converting or without other journeys)."""
        wp, wn = self.positive.sum(), self.negative.sum()
        if wp == 0 or wn == 0:
            return float("nan")
        below = np.cumsum(self.negative) - self.negative
        return float(np.sum(self.positive * (below + 0.5 * self.negative)) / (wp * wn))

    def log_loss(self) -> float:
        """Weighted log-loss per unit of weight, from the table of scores (clipped to
        [1e-12, 1 - 1e-12])."""
        pc = np.clip(self.scores, 1e-12, 1 - 1e-12)
        total = np.sum(self.positive * np.log(pc)) + np.sum(self.negative * np.log1p(-pc))
        return float(-total / self.weight)

    def result(self) -> dict[str, float]:
        """``n_journeys``, ``log_loss`` (per unit of weight), ``auc``, ``unknown_state``.

        Raises
        ------
        OptionError
            No completed held-out journey.
        """
        if self.n_journeys == 0:
            raise OptionError("the held-out part has no completed journey to score")
        return {"n_journeys": int(self.n_journeys), "log_loss": self.log_loss(),
                "auc": self.auc(), "unknown_state": int(self.unknown_state)}


def cut_at_random(journeys: JourneySet, seed: int) -> JourneySet:
    """Each journey cut after a number of its touchpoints uniform on 1..L (0 if L = 0),
    drawn from a hash of the journey and ``seed`` (the same cut wherever it is scored)."""
    L = journeys.lengths
    u = journeys.uniforms(seed, CUT_STREAM)
    keep = np.where(L > 0, 1 + np.minimum(np.floor(u * L), L - 1).astype(np.int64), 0)
    offsets = np.zeros(len(L) + 1, np.int64)
    np.cumsum(keep, out=offsets[1:])
    starts = journeys.offsets[:-1]
    ev = csr_event_index(np.column_stack([starts, starts + keep]).ravel(),
                         np.arange(0, 2 * len(L), 2)) if len(L) else np.zeros(0, np.int64)
    pick = (lambda a: None if a is None else a[ev])  # noqa: E731
    return replace(journeys, codes=journeys.codes[ev], offsets=offsets,
                   times=journeys.times[ev], sentiment=pick(journeys.sentiment),
                   device=pick(journeys.device))


def holdout_stats(model: MarkovJourneyModel, holdout: JourneySet, seed: int = 0
                  ) -> HoldoutStats:
    """The :class:`HoldoutStats` of the held-out journeys ``holdout`` under ``model``
    (``.result()``: log-loss and AUC)."""
    from journeymodel.models.markov.predict import state_of_journeys

    done = holdout.take(holdout.outcome != CENSORED)
    if done.n_journeys == 0:
        none = np.zeros(0)
        return HoldoutStats(0, 0, 0.0, none, none, none)
    res = state_of_journeys(model, cut_at_random(done, seed))
    p = np.where(res["known"], res["p_conversion"], model.p_conversion_[0])
    y, w = done.outcome == CONVERSION, done.weight
    scores, inverse = np.unique(p, return_inverse=True)
    pos = np.bincount(inverse, weights=np.where(y, w, 0.0), minlength=len(scores))
    neg = np.bincount(inverse, weights=np.where(y, 0.0, w), minlength=len(scores))
    return HoldoutStats(int(done.n_journeys), int((~res["known"]).sum()), float(w.sum()),
                        scores, pos, neg)
