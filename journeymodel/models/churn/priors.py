"""The churn models' pooling coordinates and priors, shared by the PyMC graph
(:mod:`journeymodel.models.churn.graph`) and the hand-written densities
(:mod:`journeymodel.models.churn.native`); see :func:`~.graph.build_pymc` for the model.
"""

from __future__ import annotations

#: Coordinates on which personas are pooled (functions of the published parameters).
COORDS = {"sbg": ("logit_mean_churn", "log_concentration"),
          "weibull": ("log_shape", "log_scale"),
          "bgnbd": ("log_rate", "log_r", "logit_mean_dropout", "log_concentration"),
          "gg": ("log_p", "log_q", "log_spend")}
#: Population spread of each coordinate: ``log sigma ~ Normal(0, 0.5)`` (median 1, 95% in
#: 0.38-2.7); see :func:`~.graph.build_pymc`.
SIGMA_PRIOR = (0.0, 0.5)
#: Prior scale of each coordinate's population mean (centres: ``Prepared.prior_loc``).
PRIOR_SCALE = {"sbg": (1.5, 1.5), "weibull": (1.0, 2.0), "bgnbd": (2.0, 1.5, 1.5, 1.5),
               "gg": (1.5, 1.5, 1.0)}
