"""The named choices of models, in one place the CLI can import without numpy.

The library checks its parameters against these tuples and the CLI builds every option choice
from them (``--method``, ``--topology``, ``--engine``, ``--timestamps``, ``--by``,
``--parameterization``, ``--sampler``, ``--model``, ``--time-unit``, ``--origin``,
``--censored``, ``--kind``), so the two cannot drift apart.
"""

#: Attribution methods of a Markov model (:meth:`MarkovJourneyModel.attribution`).
ATTRIBUTION_METHODS = ("removal", "first", "last", "linear", "shapley")
#: Stage topologies of a stages model (:class:`StageModel`).
STAGE_TOPOLOGIES = ("free", "funnel")
#: Forward-backward implementations of the stages model (``journeymodel.fit.hmm.ENGINES``).
HMM_ENGINES = ("numba", "hmmlearn")
#: How to read the time column (:class:`journeymodel.data.options.ReadOptions` ``timestamps``).
TIMESTAMP_KINDS = ("auto", "datetime", "epoch", "period")
#: Groupings of a conversion model, persona first (:class:`ConversionModel` ``by``).
CONVERSION_GROUPINGS = ("persona", "first_touchpoint")
#: Forms of the conversion model's hierarchy (:class:`ConversionModel` ``parameterization``).
PARAMETERIZATIONS = ("auto", "centered", "non-centered")
#: NUTS implementations of the Bayesian models (``sampler``).
SAMPLERS = ("nutpie", "pymc")
#: Churn models (:class:`ChurnModel` ``model``).
CHURN_MODELS = ("sbg", "weibull", "bgnbd")
#: Time units of churn models' periods and parameters: day, week, month, year.
CHURN_TIME_UNITS = ("D", "W", "M", "Y")
#: Where a churn lifetime starts (:class:`ChurnModel` ``origin``; the CLI writes ``-``
#: for ``_``).
CHURN_ORIGINS = ("auto", "first_event", "first_conversion")
#: How in-flight journeys' last states enter a Markov fit (:class:`MarkovJourneyModel`
#: ``censored``): the survival term of their holding time, or not at all (as ChannelAttribution).
MARKOV_CENSORED = ("survival", "ignore")
#: The process of each behavioural segment (:class:`SegmentModel` ``kind``).
SEGMENT_KINDS = ("markov", "hmm")
#: The same for a stages model (:class:`StageModel` ``censored``): the last step's survival term.
STAGES_CENSORED = MARKOV_CENSORED


def choice_enum(name: str, values: tuple[str, ...]):
    """A ``str`` Enum of ``values`` (members named after their values), for Typer options.

    Examples
    --------
    >>> Origin = choice_enum("Origin", ("auto", "first-event"))
    >>> [m.name for m in Origin], Origin("first-event").value
    (['auto', 'first_event'], 'first-event')
    """
    from enum import Enum

    return Enum(name, [(v.replace("-", "_"), v) for v in values], type=str)
