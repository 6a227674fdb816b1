"""The named choices of models, in one place the CLI can import without numpy.

The library checks its parameters against these tuples and the CLI builds its option choices
from them (``--method``, ``--topology``, ``--engine``), so the two cannot drift apart.
"""

#: Attribution methods of a Markov model (:meth:`MarkovJourneyModel.attribution`).
ATTRIBUTION_METHODS = ("removal", "first", "last", "linear", "shapley")
#: Stage topologies of a stages model (:class:`StageModel`).
STAGE_TOPOLOGIES = ("free", "funnel")
#: Forward-backward implementations of the stages model (``journeymodel.fit.hmm.ENGINES``).
HMM_ENGINES = ("numba", "hmmlearn")


def choice_enum(name: str, values: tuple[str, ...]):
    """A ``str`` Enum of ``values`` (members named after their values), for Typer options."""
    from enum import Enum

    return Enum(name, [(v.replace("-", "_"), v) for v in values], type=str)
