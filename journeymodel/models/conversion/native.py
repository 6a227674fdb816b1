"""The conversion model as a hand-written log density for nutpie (:mod:`journeymodel.fit.native`).

:func:`native_density` gives, for the sampling key and counts ConversionModel hands to
:func:`journeymodel.fit.bayes.sample`, the :class:`~journeymodel.fit.native.NativeDensity` of
:func:`journeymodel.models.conversion.graph.build_model` with one grouping, partial pooling
and the persona effects in the informed form (the default): the same free variables, stored
variables and chains' starts, the log density of :mod:`journeymodel.models.conversion.kernels`.
Other variants (two groupings, a forced parameterisation, other pooling) give None and are
compiled from PyMC.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from journeymodel.fit.logdensity import Variable


def native_density(key: Hashable, data: Mapping[str, Any] | None):
    """The hand-written density of conversion model ``key`` on ``data``, or None.

    ``key``: ``("conversion", shape, sorted parameterisation items, *extra)`` as
    ConversionModel builds it; ``data``: ``trials`` and ``conversions``.
    """
    if (not isinstance(key, tuple) or len(key) != 3 or data is None
            or len(key[1]) != 1 or tuple(key[2]) != (("levels", "informed"),)):
        return None
    return density(data["trials"], data["conversions"])


def density(trials, conversions):
    """The :class:`~journeymodel.fit.native.NativeDensity` of ``build_model((L,),
    {"levels": "informed"}, trials, conversions)``."""
    from scipy.special import gammaln

    from journeymodel.fit.native import NativeDensity, jitter_start
    from journeymodel.models.conversion import kernels

    t0 = time.perf_counter()
    n = np.asarray(trials, dtype=np.float64).ravel()
    k = np.asarray(conversions, dtype=np.float64).ravel()
    h = np.log((k + 0.5) / (n - k + 0.5))
    v = 1.0 / (k + 0.5) + 1.0 / (n - k + 0.5)
    binomln = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    body = np.concatenate([[float(n.size)], n, k, h, v, binomln])
    packed = np.ascontiguousarray(np.concatenate([[body.size + 1.0], body]))
    levels = n.size
    free = (Variable("sigma_levels_log__", ()), Variable("z_mu", ()),
            Variable("z_levels", (levels,)))
    derived = (Variable("sigma_levels", ()), Variable("mu", ()),
               Variable("logit_levels", (levels,)))
    logp_callback, expand_callback = kernels.callbacks()
    return NativeDensity(
        logp=kernels.informed_logp, expand=kernels.informed_expand,
        logp_address=logp_callback.address, expand_address=expand_callback.address,
        data=packed, free=free, derived=derived,
        initial_point=jitter_start(np.zeros(2 + levels), free),  # PyMC's support point: 0
        reparameterized=("sigma_levels_log__",), coords={},
        keep=(logp_callback, expand_callback), timings={"numba": time.perf_counter() - t0})
