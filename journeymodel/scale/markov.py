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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from journeymodel.models.markov.select import OrderStats, choose_order, order_stats
from journeymodel.stats.additive import Additive

__all__ = ["Candidates", "OrderCandidates", "fit_auto_order"]


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
        params = model.get_params()
        fits = {k: type(model)(**(params | {"order": k})).stats_of(journeys)
                for k in selection.train}
        return Candidates(selection, fits)


def fit_auto_order(model: Any, candidates: Candidates) -> Any:
    """Fit ``model`` (``order="auto"``) from the summed :class:`Candidates`: the order with
    the best held-out log-likelihood, its table in ``order_table_``."""
    order, table = choose_order(candidates.selection)
    model.fit_stats(candidates.fits[order])
    model.order_table_ = table
    return model
