"""The highest-density interval: one definition for every model, table and figure.

ArviZ's method for unimodal posteriors (``arviz.hdi``): of the sorted draws, the shortest
interval spanning ``floor(prob * n)`` steps. :func:`hdi` gives the same numbers as
``arviz.hdi`` (checked by the tests) on plain numpy arrays, vectorised over every other axis,
so results, forecasts and figures need neither ArviZ nor xarray to compute an interval.
"""

from __future__ import annotations

import numpy as np

from journeymodel.errors import OptionError


def hdi(samples, prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Highest-density interval of ``samples`` along ``axis``.

    Parameters
    ----------
    samples : array_like
        Draws along ``axis`` (at least two), any other axes.
    prob : float
        Credible mass in (0, 1).

    Returns
    -------
    low, high : ndarray
        Shape of ``samples`` without ``axis``.

    Raises
    ------
    OptionError
        ``prob`` outside (0, 1).

    Examples
    --------
    >>> [float(v) for v in hdi(np.array([0.0, 1.0, 1.1, 1.2, 9.0]), 0.5)]
    [1.0, 1.2]
    """
    if not 0 < prob < 1:
        raise OptionError(f"the interval probability must be in (0, 1) (got {prob!r})")
    s = np.sort(np.moveaxis(np.asarray(samples, dtype=float), axis, 0), axis=0)
    n = s.shape[0]
    k = min(max(int(np.floor(prob * n)), 1), n - 1)
    start = np.argmin(s[k:] - s[: n - k], axis=0)[None]
    return np.take_along_axis(s, start, 0)[0], np.take_along_axis(s, start + k, 0)[0]
