"""Hand-written log densities, compiled once as numba C callbacks and sampled by nutpie.

A PyMC model compiled by PyTensor's numba backend costs, on the 2,000-customer sample data,
25-30 s of CPU with empty caches (about 1,200 small numba functions, one per graph operation,
compiled and linked; sBG churn: 24 s for the log density and its gradient alone) and 19 us
a gradient once compiled, called through Python by nutpie (about 50 us a gradient with
nutpie's own Python layer; 3.7 s of CPU for the 70,000 gradients of an sBG fit). A model that
runs on a handful of sufficient statistics can instead give its log density and gradient as
one hand-written numba function: compiled in 1-3 s, cached on disk by numba
(``cache=True``: the function has no data compiled in, so one cache entry serves every data
set and every persona count), and called by nutpie's sampler straight from Rust as a C
function (about 1 us a gradient, no Python, no GIL).

The PyMC model stays the definition: each hand-written density is tested against PyMC's
``model.logp()``, its gradient, its deterministics and its chains' starts at random points.

A model module provides, for its model keys, a :class:`NativeDensity`: the C callbacks
``logp(dim, x, grad, logp, data) -> status`` and ``expand(dim, n_expanded, x, out, data) ->
status`` (signatures :data:`LOGP_SIGNATURE`, :data:`EXPAND_SIGNATURE`, nutpie's), the data
packed into one float64 array handed to both as ``data``, and the layout of the stored
variables. :func:`journeymodel.fit.bayes.register_native` maps a model key's first item to
the function making it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from journeymodel.fit.logdensity import Variable


def signatures():
    """nutpie's C signatures of the log density and of the stored variables (numba types):
    ``logp(dim, x, grad, logp, data) -> status`` and ``expand(dim, n_expanded, x, out,
    data) -> status`` (status 0: success)."""
    from numba import types

    double = types.CPointer(types.double)
    logp = types.int64(types.uint64, double, double, double, types.voidptr)
    expand = types.int64(types.uint64, types.uint64, double, double, types.voidptr)
    return logp, expand


@dataclass(frozen=True)
class NativeDensity:
    """A hand-written log density of a PyMC model, for nutpie.

    Attributes
    ----------
    logp : callable
        ``logp(x, data, grad) -> float``: the log density at ``x``, its gradient written into
        ``grad`` (a numba function; for tests and benchmarks).
    expand : callable
        ``expand(x, data, out)``: every stored variable, free ones first, flat, into ``out``.
    logp_address, expand_address : int
        Addresses of the C callbacks nutpie calls.
    data : ndarray
        The data, packed as the callbacks read them (float64, C order).
    free, derived : tuple of Variable
        The free (unconstrained) variables in the order of ``x``, and the other stored ones in
        the order ``expand`` writes them after the free ones.
    initial_point : callable
        ``initial_point(seed) -> ndarray``: a chain's start (PyMC's jittered support point).
    reparameterized : tuple of str
        Free variables that are transforms of a model variable (``sigma_log__``), left out
        of the posterior.
    coords : dict of str to pandas.Index
        Coordinates of named dims.
    keep : tuple
        Objects the addresses depend on (the compiled callbacks), kept alive with this.
    timings : dict of str to float
        Seconds spent loading or compiling the callbacks (``numba``).
    """

    logp: Callable[..., float]
    expand: Callable[..., Any]
    logp_address: int
    expand_address: int
    data: np.ndarray
    free: tuple[Variable, ...]
    derived: tuple[Variable, ...]
    initial_point: Callable[[int], np.ndarray]
    reparameterized: tuple[str, ...]
    coords: dict[str, Any]
    keep: tuple = ()
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_dim(self) -> int:
        return int(sum(np.prod(v.shape, dtype=int) for v in self.free))

    @property
    def n_expanded(self) -> int:
        return self.n_dim + int(sum(np.prod(v.shape, dtype=int) for v in self.derived))

    def logp_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The log density and its gradient at ``x`` (numpy in, numpy out)."""
        grad = np.zeros(self.n_dim)
        value = self.logp(np.ascontiguousarray(x, dtype=np.float64), self.data, grad)
        return float(value), grad

    def stored(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every stored variable at ``x`` by name (free ones included)."""
        out = np.zeros(self.n_expanded)
        self.expand(np.ascontiguousarray(x, dtype=np.float64), self.data, out)
        values, start = {}, 0
        for v in (*self.free, *self.derived):
            size = int(np.prod(v.shape, dtype=int))
            values[v.name] = out[start:start + size].reshape(v.shape)
            start += size
        return values

    def nutpie_model(self):
        """nutpie's compiled model of the callbacks (its sampler calls them from Rust)."""
        from journeymodel.fit.nuts import import_nutpie

        import_nutpie()  # before nutpie's modules: ArviZ deferred
        from nutpie.compile_pymc import CompiledPyMCModel

        stored = (*self.free, *self.derived)
        names = [v.name for v in stored]
        shapes = [tuple(v.shape) for v in stored]
        cuts = np.cumsum([0] + [int(np.prod(s, dtype=int)) for s in shapes])
        slices = [slice(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        return CompiledPyMCModel(
            _n_dim=self.n_dim, dims={v.name: v.dims for v in stored if v.dims},
            _coords=dict(self.coords), _shapes=dict(zip(names, shapes, strict=True)),
            compiled_logp_func=_Address(self.logp_address),
            compiled_expand_func=_Address(self.expand_address),
            initial_point_func=self.initial_point, shared_data={}, shared_var_keys={},
            user_data=self.data, n_expanded=self.n_expanded,
            shape_info=(names, slices, shapes), logp_func=None, expand_func=None,
            reparameterized_names=list(self.reparameterized))


@dataclass(frozen=True)
class _Address:
    """What nutpie reads of a compiled C callback: its address."""

    address: int


def jitter_start(support: np.ndarray, free: tuple[Variable, ...]) -> Callable[[int], np.ndarray]:
    """PyMC's start of a chain: ``support`` (the support point, flat, transformed) plus a
    U(-1, 1) jitter, each free variable's from its own stream of the seed: PyMC spawns one
    per variable and the last variable draws from the first (as
    :func:`pymc.initial_point.make_initial_point_fn` does; checked in the tests)."""
    from journeymodel.fit.logdensity import jittered

    return jittered(np.asarray(support, dtype=np.float64), free, list(range(len(free)))[::-1])
