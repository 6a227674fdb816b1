"""The Markov model's held-out steps on Dask (issue 15): ``order="auto"`` (the order chosen
on held-out journeys) and held-out conversion scores, from statistics summed over the
partitions of a log.

Both rest on the held-out split being a hash of each journey (its customer, start and the
seed: :meth:`~journeymodel.data.journeyset.JourneySet.split`), so every partition splits its
journeys as one process splits the whole log.

- **Order**: each partition counts the moves of its training and held-out journeys at every
  candidate order (:class:`~journeymodel.models.markov.select.OrderStats`) and the model's
  statistics at every candidate order (:class:`Candidates`); the client chooses the order
  from the sums (:func:`~journeymodel.models.markov.select.choose_order`) and fits the sum at
  that order. One pass over the log.
- **Held-out scores** (``--holdout F``): each partition splits its journeys, keeps its
  held-out ones on its worker (:func:`~journeymodel.scale.engine.persist_parts`) and sends
  the statistics of its training ones; the client fits the sum, sends the model to the
  workers, and each scores its held-out journeys (:class:`~journeymodel.models.markov.
  holdout.HoldoutStats`: log-loss sums and the weights of converting and other journeys at
  each distinct score, which add exactly, so the AUC is the whole held-out set's without
  gathering a score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from journeymodel.models.base import JourneyMeta
from journeymodel.models.markov.holdout import HoldoutStats, holdout_stats
from journeymodel.models.markov.select import OrderStats, choose_order, order_stats
from journeymodel.scale.engine import persist_parts, tree_sum
from journeymodel.scale.parts import PartResult, add_meta
from journeymodel.stats.additive import Additive
from journeymodel.stats.transitions import transition_stats

__all__ = ["Candidates", "HeldOut", "HoldoutSplit", "MarkovCounts", "OrderCandidates",
           "Training", "fit_auto_order", "fit_with_holdout"]


@dataclass(frozen=True, eq=False)
class Candidates(Additive):
    """What choosing the order and fitting at it read: the order statistics, and the model's
    statistics at each candidate order (an order the sum's vocabulary cannot encode is
    dropped from both)."""

    selection: OrderStats
    fits: dict[int, Any]

    def _add(self, other: Candidates) -> Candidates:
        selection = self.selection + other.selection
        return Candidates(selection, {k: self.fits[k] + other.fits[k] for k in selection.train})


@dataclass(frozen=True)
class OrderCandidates:
    """``JourneySet -> Candidates`` of a Markov model with ``order="auto"`` (pickled to the
    workers): the split and orders of :meth:`MarkovJourneyModel.fit
    <journeymodel.models.markov.model.MarkovJourneyModel.fit>`."""

    model: Any

    def __call__(self, journeys: Any) -> Candidates:
        model = self.model
        selection = order_stats(journeys, seed=model.seed, collapse=model.collapse_repeats)
        fits = {k: MarkovCounts(k, model.collapse_repeats)(journeys) for k in selection.train}
        return Candidates(selection, fits)


@dataclass(frozen=True)
class MarkovCounts:
    """``JourneySet -> MarkovStats`` at ``order``: what ``MarkovJourneyModel.stats_of``
    returns, without its check that the journeys have a touchpoint (a partition, or its
    training journeys, may have none; ``fit_stats`` checks the sum)."""

    order: int
    collapse: bool

    def __call__(self, journeys: Any) -> Any:
        return transition_stats(journeys, self.order, self.collapse)


def fit_auto_order(model: Any, candidates: Candidates) -> Any:
    """Fit ``model`` (``order="auto"``) from the summed :class:`Candidates`: the order with
    the best held-out log-likelihood, its table in ``order_table_``."""
    order, table = choose_order(candidates.selection)
    model.fit_stats(candidates.fits[order])
    model.order_table_ = table
    return model


def fit_statistics(model: Any) -> Any:
    """``JourneySet -> statistics`` the model is fitted from on Dask (:class:`OrderCandidates`
    for ``order="auto"``)."""
    if model.order == "auto":
        return OrderCandidates(model)
    return MarkovCounts(int(model.order), bool(model.collapse_repeats))


def fit_from(model: Any, stats: Any) -> Any:
    """Fit ``model`` from the summed result of :func:`fit_statistics`."""
    if model.order == "auto":
        return fit_auto_order(model, stats)
    return model.fit_stats(stats)


@dataclass(frozen=True)
class HeldOut:
    """A partition split for ``--holdout`` (kept on its worker): the statistics and facts of
    its training journeys, and its held-out journeys."""

    train: Any
    meta: JourneyMeta
    test: Any


@dataclass(frozen=True, eq=False)
class Training(Additive):
    """The training journeys' statistics and facts of some partitions, added."""

    stats: Any
    meta: JourneyMeta

    def _add(self, other: Training) -> Training:
        return Training(self.stats + other.stats, add_meta(self.meta, other.meta))


@dataclass(frozen=True)
class HoldoutSplit:
    """``JourneySet -> HeldOut``: the split of ``fit markov --holdout`` (pickled to the
    workers)."""

    model: Any
    fraction: float
    seed: int

    def __call__(self, journeys: Any) -> HeldOut:
        train, test = journeys.split(self.fraction, self.seed)
        return HeldOut(fit_statistics(self.model)(train), JourneyMeta.of(train), test)


def training(part: HeldOut) -> Training:
    return Training(part.train, part.meta)


def score_part(part: PartResult, model: Any, seed: int) -> HoldoutStats:
    """A partition's held-out scores (none for a partition without usable rows)."""
    if part.stats is None:
        none = np.zeros(0)
        return HoldoutStats(0, 0, 0.0, none, none, none)
    return holdout_stats(model, part.stats.test, seed)


def fit_with_holdout(model: Any, source: Any, options: Any, client: Any, fraction: float,
                     seed: int, *, show_progress: bool = False) -> tuple[Any, dict]:
    """Fit the Markov ``model`` on the training journeys of the log ``source`` and score its
    held-out ones (``fit markov --holdout``) on Dask: the same split, model and scores as
    one process (:func:`~journeymodel.models.markov.holdout.holdout_stats`).

    Returns
    -------
    model, scores
        ``scores``: ``n_journeys``, ``log_loss``, ``auc``, ``unknown_state``.
    """
    parts, summary = persist_parts(source, options, client,
                                   HoldoutSplit(model, fraction, seed), training,
                                   progress=show_progress)
    fit_from(model, summary.stats.stats)
    model.ledger_, model.journeys_ = summary.ledger, summary.stats.meta
    [shared] = client.scatter([model], broadcast=True)
    scored = [client.submit(score_part, p, shared, seed, pure=False) for p in parts]
    scores = tree_sum(client, scored).result().result()
    return model, scores
