"""Conversion counts: completed journeys and conversions per persona (and first touchpoint).

The sufficient statistics of :class:`~journeymodel.models.conversion.model.ConversionModel`:
its binomial likelihood reads only the number of completed journeys and of conversions of each
cell of the grouping, so counts of parts of a log (files, Dask partitions) add up to the counts
of the whole, and the model fits from their sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeymodel.choices import CONVERSION_GROUPINGS
from journeymodel.data.journeys import CENSORED, CONVERSION, JourneySet
from journeymodel.errors import InputError, OptionError
from journeymodel.stats.additive import Additive
from journeymodel.stats.vocab import union

#: Groupings, persona first.
GROUPINGS = CONVERSION_GROUPINGS
#: The level of journeys without a persona, after every named persona.
NO_PERSONA = "(none)"
#: The first touchpoint of journeys with no touchpoint before their outcome, after every name.
DIRECT = "(direct)"
#: The catch-all level of each grouping, kept last when vocabularies merge (as in one log).
CATCH_ALL = {"persona": NO_PERSONA, "first_touchpoint": DIRECT}


@dataclass(frozen=True, eq=False)
class ConversionCounts(Additive):
    """Completed journeys and conversions per cell of the grouping (sufficient statistics).

    Counts add: ``a + b`` holds the journeys of both, with the levels of each grouping merged on
    their sorted union (the catch-all ``"(none)"`` / ``"(direct)"`` kept last, as a whole log
    orders them), so ``sum(parts)`` of a log split anywhere equals the counts of the whole.

    Attributes
    ----------
    by : tuple of str
        The grouping, e.g. ``("persona",)`` or ``("persona", "first_touchpoint")``.
    levels : tuple of tuple of str
        Level names of each grouping.
    trials, conversions : ndarray of int64, shape (n_levels_0[, n_levels_1])
        Completed journeys and conversions per cell.
    censored : int
        Journeys left out because their outcome is not known yet: open (in flight), or
        started within the last inactivity gap.
    recent : int
        Of ``censored``, the journeys that ended (so ``describe`` counts them as converted or
        dropped off) but started within the last inactivity gap; the rest are in flight.

    Examples
    --------
    >>> import numpy as np
    >>> a = ConversionCounts(("persona",), (("new", "loyal"),), np.array([10, 4]),
    ...                      np.array([2, 1]), censored=1)
    >>> b = ConversionCounts(("persona",), (("bargain", "new"),), np.array([5, 6]),
    ...                      np.array([0, 3]), censored=0)
    >>> total = a + b
    >>> total.levels, total.trials.tolist(), total.conversions.tolist(), total.censored
    ((('bargain', 'loyal', 'new'),), [5, 4, 16], [0, 1, 5], 1)
    >>> sum([a, b]).equals(b + a)
    True
    """

    by: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    trials: np.ndarray
    conversions: np.ndarray
    censored: int
    recent: int = 0

    def _add(self, other: ConversionCounts) -> ConversionCounts:
        if self.by != other.by:
            raise OptionError(f"conversion counts of different groupings cannot be added "
                              f"(by={list(self.by)} and by={list(other.by)})")
        if self.levels == other.levels:
            trials, conversions, levels = (self.trials + other.trials,
                                           self.conversions + other.conversions, self.levels)
        else:
            levels, mine, theirs = zip(*(merge_levels(a, b, CATCH_ALL[name]) for name, a, b
                                         in zip(self.by, self.levels, other.levels,
                                                strict=True)), strict=True)
            shape = tuple(len(names) for names in levels)
            trials = _place(self.trials, mine, shape) + _place(other.trials, theirs, shape)
            conversions = (_place(self.conversions, mine, shape)
                           + _place(other.conversions, theirs, shape))
        return ConversionCounts(self.by, tuple(levels), trials, conversions,
                                self.censored + other.censored, self.recent + other.recent)


    @property
    def in_flight(self) -> int:
        """Journeys left out because they are still open at the end of observation."""
        return self.censored - self.recent

    def equals(self, other: ConversionCounts) -> bool:
        """Same grouping, the same levels and the same counts in every cell (whatever the level
        order)."""
        if self.by != other.by or [set(v) for v in self.levels] != [set(v) for v in other.levels]:
            return False
        mine, theirs = self + _zero_like(other), other + _zero_like(self)
        return (mine.levels == theirs.levels and np.array_equal(mine.trials, theirs.trials)
                and np.array_equal(mine.conversions, theirs.conversions)
                and (self.censored, self.recent) == (other.censored, other.recent))


def _zero_like(counts: ConversionCounts) -> ConversionCounts:
    return ConversionCounts(counts.by, counts.levels, np.zeros_like(counts.trials),
                            np.zeros_like(counts.conversions), 0, 0)


def merge_levels(a: tuple[str, ...], b: tuple[str, ...], catch_all: str
                 ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Like :func:`journeymodel.stats.vocab.union`, with ``catch_all`` kept last if present.

    Examples
    --------
    >>> union, ia, ib = merge_levels(("b", "(none)"), ("a", "b"), "(none)")
    >>> union, ia.tolist(), ib.tolist()
    (('a', 'b', '(none)'), [1, 2], [0, 1])
    """
    named, ia, ib = union(tuple(v for v in a if v != catch_all),
                          tuple(v for v in b if v != catch_all))
    if catch_all not in a and catch_all not in b:
        return named, ia, ib
    last = len(named)
    return ((*named, catch_all), _with_last(a, ia, catch_all, last),
            _with_last(b, ib, catch_all, last))


def _with_last(names: tuple[str, ...], index: np.ndarray, catch_all: str, last: int
               ) -> np.ndarray:
    out = np.full(len(names), last, np.int64)
    out[[i for i, v in enumerate(names) if v != catch_all]] = index
    return out


def _place(values: np.ndarray, index: tuple[np.ndarray, ...], shape: tuple[int, ...]
           ) -> np.ndarray:
    """``values`` moved onto a grid of ``shape``, axis ``i`` through ``index[i]``."""
    out = np.zeros(shape, values.dtype)
    out[np.ix_(*index)] = values
    return out


def count_conversions(journeys: JourneySet, by: tuple[str, ...] = ("persona",)
                      ) -> ConversionCounts:
    """Count completed journeys and conversions per persona (and first touchpoint).

    Journeys without a persona form the group ``"(none)"``; journeys with no touchpoint before
    their outcome have the first touchpoint ``"(direct)"``. Left out and counted in
    ``censored``: open journeys, and journeys that started within the last inactivity gap
    before the end of observation (only their conversions could be known yet, which would bias
    the rate upward). A part of a log with no completed journey counts zeros (the model refuses
    to fit on no completed journey at all). Vectorised (``bincount``).

    Raises
    ------
    InputError
        Grouping by persona when the journeys have no persona at all, or journey weights that
        are not whole numbers.
    OptionError
        A grouping other than one or two distinct names of :data:`GROUPINGS`.
    """
    check_grouping(by)
    recent = _too_recent(journeys) & (journeys.outcome != CENSORED)
    done = (journeys.outcome != CENSORED) & ~recent
    codes, levels = [], []
    for name in by:
        code, names = _group_codes(journeys, name)
        codes.append(code[done])
        levels.append(names)
    shape = tuple(len(names) for names in levels)
    flat = np.ravel_multi_index(tuple(codes), shape) if codes[0].size else codes[0]
    weight = journeys.weight[done]
    if not np.allclose(weight, np.rint(weight)):
        raise InputError("journey weights must be whole numbers of journeys to count "
                         "conversions", value=float(weight[weight != np.rint(weight)][0]))
    size = int(np.prod(shape))
    trials = np.bincount(flat, weights=weight, minlength=size)
    conv = np.bincount(flat, weights=weight * (journeys.outcome[done] == CONVERSION),
                       minlength=size)
    return ConversionCounts(tuple(by), tuple(levels), np.rint(trials).astype(np.int64)
                            .reshape(shape), np.rint(conv).astype(np.int64).reshape(shape),
                            int(np.rint(journeys.weight[~done].sum())),
                            int(np.rint(journeys.weight[recent].sum())))


def _too_recent(journeys: JourneySet) -> np.ndarray:
    """Journeys that started within the last inactivity gap before the end of observation.

    Their outcome is known only if they converted (a drop-off needs a whole gap of silence),
    so counting them would overstate conversion; they are left out with the censored ones.
    """
    gap, until = journeys.gap, journeys.observed_until
    if gap is None or journeys.time_kind == "none" or not np.isfinite(until):
        return np.zeros(journeys.n_journeys, bool)
    with np.errstate(invalid="ignore"):
        return journeys.start > until - gap


def check_grouping(by: tuple[str, ...]) -> None:
    """Raise OptionError unless ``by`` is one or two distinct names of :data:`GROUPINGS`."""
    if not 1 <= len(by) <= 2 or len(set(by)) != len(by) or not set(by) <= set(GROUPINGS):
        raise OptionError(f"by must be one or two distinct names among {list(GROUPINGS)} "
                          f"(got {list(by)!r})")


def _group_codes(journeys: JourneySet, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    if name == "persona":
        if not journeys.personas:
            raise InputError("the journeys have no persona column, so conversion cannot be "
                             "modelled by persona; name it with --persona-col (or "
                             "read_options persona_col=...)")
        code = journeys.persona.astype(np.int64)
        names = tuple(journeys.personas)
        if (code < 0).any():
            code = np.where(code < 0, len(names), code)
            names = (*names, NO_PERSONA)
        return code, names
    first = np.full(journeys.n_journeys, len(journeys.touchpoints), np.int64)
    has = journeys.lengths > 0
    first[has] = journeys.codes[journeys.offsets[:-1][has]]
    names = tuple(journeys.touchpoints)
    if not has.all():
        names = (*names, DIRECT)
    return first, names
