"""journeymodel: probabilistic customer-journey maps from event logs.

The public API is re-exported here lazily (PEP 562), so that ``import journeymodel`` and the CLI's
``--help`` stay fast: numpy, pandas, xarray and PyMC load only when a name that needs them is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from journeymodel.lazy import exports

__version__ = "0.1.0"

_EXPORTS = {
    "JourneyModelError": "journeymodel.errors",
    "InputError": "journeymodel.errors",
    "OptionError": "journeymodel.errors",
    "ModelFileError": "journeymodel.errors",
    "NotFittedError": "journeymodel.errors",
    "ConvergenceWarning": "journeymodel.errors",
    "DataWarning": "journeymodel.errors",
    "ReadOptions": "journeymodel.data.options",
    "Ledger": "journeymodel.data.ledger",
    "read_events": "journeymodel.data.events",
    "JourneySet": "journeymodel.data.journeyset",
    "load_journeys": "journeymodel.data.journeys",
    "build_journeys": "journeymodel.data.journeys",
    "save_model": "journeymodel.io.persist",
    "load_model": "journeymodel.io.persist",
    "make_demo_data": "journeymodel.data.datasets",
    "MarkovJourneyModel": "journeymodel.models.markov.model",
    "StageModel": "journeymodel.models.stages.model",
    "ConversionModel": "journeymodel.models.conversion.model",
    "ChurnModel": "journeymodel.models.churn.model",
    "SegmentModel": "journeymodel.models.segments.model",
    "compare": "journeymodel.analysis.compare",
    "forecast_in_flight": "journeymodel.analysis.forecast",
    "make_incident_data": "journeymodel.data.incidents",
    "make_mixture_data": "journeymodel.data.mixtures",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__ = exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from journeymodel.analysis.compare import compare
    from journeymodel.analysis.forecast import forecast_in_flight
    from journeymodel.data.datasets import make_demo_data
    from journeymodel.data.events import read_events
    from journeymodel.data.incidents import make_incident_data
    from journeymodel.data.journeys import build_journeys, load_journeys
    from journeymodel.data.journeyset import JourneySet
    from journeymodel.data.ledger import Ledger
    from journeymodel.data.mixtures import make_mixture_data
    from journeymodel.data.options import ReadOptions
    from journeymodel.errors import (
        ConvergenceWarning,
        DataWarning,
        InputError,
        JourneyModelError,
        ModelFileError,
        NotFittedError,
        OptionError,
    )
    from journeymodel.io.persist import load_model, save_model
    from journeymodel.models.churn.model import ChurnModel
    from journeymodel.models.conversion.model import ConversionModel
    from journeymodel.models.markov.model import MarkovJourneyModel
    from journeymodel.models.segments.model import SegmentModel
    from journeymodel.models.stages.model import StageModel
