"""nutpie's sampler without ArviZ: its import, and its trace as the DataTree the fits keep.

``import nutpie`` imports ArviZ (``nutpie.sample`` does at its top), and ArviZ imports
``scipy.stats``, matplotlib and its plotting and I/O packages: about 2 s of CPU, and 3-10 s
of wall time on a busy machine, in every process that samples (issue 20), although
journeymodel uses nothing of ArviZ there. :func:`import_nutpie` imports nutpie with ArviZ
deferred (imported the first time nutpie uses it, which it does not here), and
:func:`trace_tree` turns nutpie's raw trace (Arrow record batches, ``return_raw_trace=True``)
into the ``posterior`` and ``sample_stats`` groups directly, the same arrays, dims and
coordinates nutpie's own conversion through ``arviz.from_dict`` gives (tests/test_nuts.py).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

#: Columns of nutpie's statistics left out, as its own conversion leaves them out: those it
#: fills only when asked (its ``store_*`` settings, all off here), and each row's chain and
#: draw numbers (the dims of every variable).
SKIPPED_STATS = frozenset({
    "gradient", "unconstrained_draw", "mass_matrix_inv", "mass_matrix_eigvals",
    "mass_matrix_stds", "divergence_start", "divergence_end", "divergence_momentum",
    "divergence_start_gradient", "transformed_position", "transformed_gradient",
    "transformation_mu", "chain", "draw"})


def import_nutpie():
    """The ``nutpie`` module, imported without importing ArviZ.

    While nutpie is imported, ``arviz`` is a stand-in module; nutpie's modules keep it, and it
    imports the real ArviZ the first time one of them uses an attribute of it (nutpie's own
    conversion of a trace, unused here). ``import arviz`` elsewhere is not affected.
    """
    if "nutpie" in sys.modules:
        return sys.modules["nutpie"]
    stand_in = "arviz" not in sys.modules and importlib.util.find_spec("arviz") is not None
    if stand_in:
        sys.modules["arviz"] = _Deferred("arviz")
    try:
        import nutpie
    finally:
        if stand_in and isinstance(sys.modules.get("arviz"), _Deferred):
            del sys.modules["arviz"]
    return nutpie


class _Deferred(types.ModuleType):
    """A module that imports the module of its name when an attribute is first asked for."""

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def trace_tree(raw: Any, *, reparameterized: Sequence[str] = (),
               coords: Mapping[str, Any] | None = None,
               settings: Mapping[str, Any] | None = None) -> xr.DataTree:
    """Groups ``posterior`` and ``sample_stats`` of nutpie's raw trace.

    Parameters
    ----------
    raw
        What ``nutpie.sample(..., return_raw_trace=True, save_warmup=False)`` returns.
    reparameterized : sequence of str
        Stored variables left out of the posterior (unconstrained copies, ``sigma_log__``).
    coords : mapping of str to sequence, optional
        Coordinates of named dims (others are numbered 0..n-1).
    settings : mapping, optional
        The sampler's settings, kept as JSON in ``sample_stats.attrs``.

    Returns
    -------
    xarray.DataTree
        Variables with dims ``(chain, draw, ...)``; draws of tuning steps left out.
    """
    return batches_tree(*raw.get_arrow_trace(), reparameterized=reparameterized,
                        coords=coords, settings=settings)


def batches_tree(draw_batches: Sequence[Any], stat_batches: Sequence[Any], *,
                 reparameterized: Sequence[str] = (), coords: Mapping[str, Any] | None = None,
                 settings: Mapping[str, Any] | None = None) -> xr.DataTree:
    """:func:`trace_tree` of the trace's Arrow record batches (one a chain), draws and
    statistics (``raw.get_arrow_trace()``, which can be taken once)."""
    import xarray as xr

    keep = [~_column(s, "tuning").astype(bool) for s in stat_batches]
    coords = dict(coords or {})
    skip = set(reparameterized)
    posterior = _group(draw_batches, keep, skip, coords)
    stats = _group(stat_batches, keep, SKIPPED_STATS, coords)
    import nutpie

    stats.attrs = {"inference_library": "nutpie",
                   "inference_library_version": nutpie.__version__,
                   **({"inference_library_settings": json.dumps(dict(settings))}
                      if settings is not None else {})}
    return xr.DataTree.from_dict({"/posterior": posterior, "/sample_stats": stats})


def _column(batch, name: str) -> np.ndarray:
    import pyarrow

    return pyarrow.array(batch.column(name)).to_numpy(zero_copy_only=False)


def _group(batches, keep: list[np.ndarray], skip, coords: dict[str, Any]) -> xr.Dataset:
    """One Dataset of the Arrow batches (one a chain): rows where ``keep``, padded with NaN
    (floats) to the longest chain, as nutpie pads them."""
    import pyarrow
    import xarray as xr

    n_chains, longest = len(batches), max(int(k.sum()) for k in keep)
    variables, used = {}, {}
    for name in batches[0].column_names:
        if name in skip:
            continue
        meta = batches[0].column(name).field.metadata or {}
        dims = [d for d in meta.get(b"dims", b"").decode().split(",") if d]
        shape = [int(s) for s in meta.get(b"shape", b"").decode().split(",") if s]
        data = None
        for chain, (batch, rows) in enumerate(zip(batches, keep, strict=True)):
            col = pyarrow.array(batch.column(name))
            null = col.is_null().to_numpy(zero_copy_only=False)
            if hasattr(col, "flatten"):  # fixed-size lists: the items of every row
                col = col.flatten()
            values = col.to_numpy(zero_copy_only=False)
            if data is None:
                data = _empty((n_chains, longest, *shape), col.type.to_pandas_dtype())
            full = _empty((null.size, *shape), data.dtype)
            if values.shape[0] == null.size:
                values = values[~null]
            full[~null] = values.reshape(-1, *shape)
            data[chain, :int(rows.sum())] = full[rows]
        dims = dims or [f"{name}_dim_{i}" for i in range(len(shape))]
        for d, n in zip(dims, shape, strict=True):
            used[d] = coords[d] if d in coords else np.arange(n)
        variables[name] = (("chain", "draw", *dims), data)
    return xr.Dataset(variables, coords={"chain": np.arange(n_chains),
                                         "draw": np.arange(longest), **used})


def _empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.full(shape, np.nan, dtype=dtype)
    if dtype.kind == "O":
        return np.full(shape, None, dtype=dtype)
    return np.zeros(shape, dtype=dtype)
