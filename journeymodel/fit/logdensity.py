"""A PyMC model's log density as PyTensor-compiled numba functions, sampled by nutpie.

Why not ``nutpie.compile_pymc_model``: it wraps PyTensor's numba code in a ``numba.cfunc``
whose globals (the model's data pointers) change in every process, so numba cannot cache it
and LLVM compiles the whole inlined log density again in every process: 9-30 s on the
2,000-customer sample data (conversion 12.6 s, sBG churn 35 s, at load 3-4 on 2 cores), against
0.5-4 s of sampling. Here the log density and its gradient are a plain PyTensor function
(numba backend): PyTensor caches its numba code on disk (``base_compiledir``), keyed by the
code, so a later process loads it (0.2-0.6 s) instead of compiling it. nutpie's sampler calls
it through Python (:func:`nutpie.compiled_pyfunc.from_pyfunc`, the route of its JAX backend):
10-20 us a call more than the ``cfunc``, about 1 s over the 50,000 gradients of a fit.

The data of the model's ``pm.Data`` containers (and any other shared variable, such as
mutable dimension lengths) become explicit arguments of the compiled functions, so one
compiled model serves any data of the same types, and nothing of a user's data is compiled in
or cached on disk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from journeymodel.errors import OptionError

if TYPE_CHECKING:  # pragma: no cover
    import pymc as pm


@dataclass(frozen=True)
class Variable:
    """A stored variable: its name, shape and named dims (empty when the model gives none)."""

    name: str
    shape: tuple[int, ...]
    dims: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogDensity:
    """A PyMC model compiled for nutpie.

    Attributes
    ----------
    n_dim : int
        Length of the unconstrained parameter vector.
    logp : callable
        ``logp(x, *data) -> (float, ndarray (n_dim,))``: log density and its gradient.
    expand : callable
        ``expand(x, *data) -> tuple of ndarray``: the stored variables after the free ones.
    initial_point : callable
        ``initial_point(seed) -> ndarray (n_dim,)``: PyMC's jittered start of a chain.
    free, derived : tuple of Variable
        The free (unconstrained) variables, in the order of ``x``, and the others stored.
    data_names : tuple of str
        Names of the data arguments, in order.
    data : dict of str to ndarray
        The values the model was built with.
    data_types : dict of str to (numpy.dtype, tuple)
        The dtype and static shape (``None`` where free) each data argument must have.
    reparameterized : tuple of str
        Free variables that are transforms of a model variable (``sigma_log__``): nutpie
        leaves them out of the posterior, as :func:`nutpie.compile_pymc_model` does.
    coords : dict of str to pandas.Index
        The model's coordinates (nutpie takes an Index, not a list of numbers).
    timings : dict of str to float
        Seconds spent building the graphs (``graph``), compiling them with PyTensor
        (``pytensor``) and compiling or loading their numba code (``numba``).
    """

    n_dim: int
    logp: Callable[..., Any]
    expand: Callable[..., Any]
    initial_point: Callable[[int], np.ndarray]
    free: tuple[Variable, ...]
    derived: tuple[Variable, ...]
    data_names: tuple[str, ...]
    data: dict[str, np.ndarray]
    data_types: dict[str, tuple[np.dtype, tuple]]
    reparameterized: tuple[str, ...]
    coords: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def arguments(self, data: Mapping[str, Any] | None = None) -> tuple[np.ndarray, ...]:
        """The data arguments: the model's own values, replaced by ``data`` where given, cast to
        the compiled dtypes (a value of another dtype would make numba compile again).

        Raises
        ------
        OptionError
            A name the model does not have, or a value of the wrong rank or static shape.
        """
        values = dict(self.data)
        for name, value in (data or {}).items():
            if name not in self.data_types:
                raise OptionError(f"the model has no data named {name!r} "
                                  f"(it has {', '.join(self.data_names)})")
            dtype, shape = self.data_types[name]
            array = np.array(value, dtype=dtype, order="C")  # 0-d stays 0-d
            if array.ndim != len(shape) or any(
                    s is not None and s != n for s, n in zip(shape, array.shape, strict=True)):
                raise OptionError(f"data {name!r} must have shape {shape} (None: any length); "
                                  f"got {array.shape}")
            values[name] = array
        return tuple(values[name] for name in self.data_names)

    def nutpie_model(self, data: Mapping[str, Any] | None = None):
        """A nutpie model of this log density on ``data`` (see :meth:`arguments`)."""
        from journeymodel.fit.nuts import import_nutpie

        import_nutpie()  # before nutpie's modules: ArviZ deferred
        from nutpie.compiled_pyfunc import from_pyfunc

        args = self.arguments(data)
        logp, expand, free = self.logp, self.expand, self.free
        cuts = np.cumsum([0] + [int(np.prod(v.shape)) for v in free])

        def make_logp():
            def logp_fn(x):
                value, grad = logp(x, *args)
                return float(value), grad
            return logp_fn

        def make_expand(seed1, seed2, chain):  # noqa: ARG001 - nutpie's signature
            def expand_fn(x):
                out = {v.name: x[cuts[i]:cuts[i + 1]].reshape(v.shape)
                       for i, v in enumerate(free)}
                for v, value in zip(self.derived, expand(x, *args), strict=True):
                    out[v.name] = np.asarray(value, dtype=np.float64).reshape(v.shape)
                return out
            return expand_fn

        stored = (*free, *self.derived)
        return from_pyfunc(
            self.n_dim, make_logp, make_expand, [np.dtype(np.float64)] * len(stored),
            [v.shape for v in stored], [v.name for v in stored],
            coords=self.coords, dims={v.name: v.dims for v in stored if v.dims},
            make_initial_point_fn=self.initial_point,
            reparameterized_names=list(self.reparameterized))


def compile_logdensity(model: pm.Model) -> LogDensity:
    """Compile ``model``'s log density, gradient and stored variables with PyTensor (numba).

    Call it inside :func:`journeymodel.fit.bayes.exact_float_math`: the numba code is then
    the same bits whether it is compiled afresh or loaded from PyTensor's cache.
    """
    t0 = time.perf_counter()
    free = _free_variables(model)
    x, logp, grad, derived, outs = _graphs(model, free)
    shared = _shared_inputs([logp, grad, *outs])
    timings = {"graph": time.perf_counter() - t0}

    t0 = time.perf_counter()
    initial = _initial_point(model, free)
    logp_fn, expand_fn = _compile(model, x, shared, [logp, grad], outs)
    timings["pytensor"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    data = {s.name: np.array(s.get_value(), order="C") for s in shared}
    start = initial(0)
    args = tuple(data[s.name] for s in shared)
    logp_fn(start, *args)  # numba compiles here, or loads PyTensor's cached code
    expanded = expand_fn(start, *args)
    timings["numba"] = time.perf_counter() - t0

    dims = model.named_vars_to_dims
    return LogDensity(
        n_dim=int(start.size), logp=logp_fn, expand=expand_fn, initial_point=initial,
        free=free,
        derived=tuple(Variable(name, np.shape(value), tuple(dims.get(name, ())))
                      for name, value in zip(derived, expanded, strict=True)),
        data_names=tuple(s.name for s in shared), data=data,
        data_types={s.name: (np.dtype(s.type.dtype), tuple(s.type.shape)) for s in shared},
        reparameterized=tuple(_reparameterized(model)),
        coords={name: pd.Index(values if values is not None
                               else range(int(model.dim_lengths[name].eval())))
                for name, values in model.coords.items()},
        timings=timings)


def _reparameterized(model: pm.Model) -> list[str]:
    """Value variables that transform their random variable (``sigma_log__``)."""
    return [model.rvs_to_values[rv].name for rv in model.free_RVs
            if model.rvs_to_transforms.get(rv) is not None]


def _free_variables(model: pm.Model) -> tuple[Variable, ...]:
    """The value variables of the free random variables, in the model's order, with shapes."""
    shapes = model.eval_rv_shapes()
    dims = model.named_vars_to_dims
    return tuple(Variable(v.name, tuple(int(n) for n in shapes[v.name]),
                          tuple(dims.get(v.name, ())))
                 for v in (model.rvs_to_values[rv] for rv in model.free_RVs))


def _graphs(model: pm.Model, free: tuple[Variable, ...]):
    """The log density and its gradient as functions of one flat vector ``x``, and the stored
    variables that are not free (deterministics, untransformed random variables)."""
    import pytensor.tensor as pt
    from pytensor.graph import rewrite_graph
    from pytensor.graph.replace import clone_replace

    values = [model.rvs_to_values[rv] for rv in model.free_RVs]
    logp = rewrite_graph(model.logp(), include=["canonicalize", "stabilize"])
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in pt.grad(logp, values)])
    n_dim = int(sum(np.prod(v.shape) for v in free))
    x = pt.TensorType("float64", shape=(n_dim,))("x")
    cuts = np.cumsum([0] + [int(np.prod(v.shape)) for v in free])
    slices = {value: x[cuts[i]:cuts[i + 1]].reshape(v.shape).astype(value.dtype)
              for i, (value, v) in enumerate(zip(values, free, strict=True))}
    names = {v.name for v in free}
    derived = [v for v in model.unobserved_value_vars if v.name not in names]
    logp, grad, *outs = clone_replace([logp, grad, *(pt.as_tensor(v) for v in derived)],
                                      slices)
    return x, logp, grad, [v.name for v in derived], outs


def _shared_inputs(outputs) -> list:
    """The shared variables (``pm.Data``, mutable dimension lengths) the outputs depend on."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors

    seen = {}
    for var in ancestors(outputs):
        if isinstance(var, SharedVariable):
            seen.setdefault(var.name, var)
    return [seen[name] for name in sorted(seen)]


def _compile(model: pm.Model, x, shared, logp_outputs, expand_outputs):
    """Numba functions ``logp(x, *data)`` and ``expand(x, *data)`` (the shared variables
    replaced by explicit inputs: nothing of the data is compiled in)."""
    from pymc.pytensorf import compile as compile_pymc
    from pytensor.graph.replace import clone_replace

    inputs = [s.type(name=s.name) for s in shared]
    swap = dict(zip(shared, inputs, strict=True))
    with model:
        logp = compile_pymc([x, *inputs], clone_replace(logp_outputs, swap), mode="NUMBA",
                            on_unused_input="ignore")
        if not expand_outputs:  # nothing but free variables to store
            return logp.vm.jit_fn, lambda *args: ()
        expand = compile_pymc([x, *inputs], clone_replace(expand_outputs, swap),
                              mode="NUMBA", on_unused_input="ignore")
    return logp.vm.jit_fn, expand.vm.jit_fn


def _initial_point(model: pm.Model, free: tuple[Variable, ...]) -> Callable[[int], np.ndarray]:
    """PyMC's start of a chain (support point, jittered from the seed) as one flat vector."""
    from pymc.initial_point import make_initial_point_fn

    point_fn = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                     default_strategy="support_point", return_transformed=True)
    names = [v.name for v in free]
    # nutpie asks for the chains' starts from several threads at once; a compiled PyTensor
    # function keeps its outputs in shared storage cells, so two calls at once can read each
    # other's emptied cells (seen as "Failed to initialize point: 'NoneType' object has no
    # attribute 'shape'" under load). One call at a time.
    lock = threading.Lock()

    def initial(seed: int) -> np.ndarray:
        with lock:
            point = point_fn(seed)
            return np.concatenate([np.ravel(point[n]) for n in names]).astype(np.float64)

    return initial


# -- across processes: the compiled model without PyMC ----------------------------------------
#
# PyTensor caches the numba code of the log density on disk, yet a new process still imports
# PyMC, builds the model, differentiates and rewrites its graph and links the functions
# (2.5-3 s of CPU of a 4-7 s fit) only to find that code again. :func:`save_entry` records,
# next to PyTensor's cache, what a later process needs to load the compiled functions
# straight from numba's cache (their few lines of generated Python and their cache key) and
# to rebuild the :class:`LogDensity` (shapes, names, dims, the data's types, how the chains'
# starts are drawn); :func:`load_entry` does that without importing PyMC. An entry is keyed
# by the caller's model key, the versions of PyMC, PyTensor, numba and nutpie and the source
# that builds the graph (fit/ and the package of the build function), so a changed graph
# never meets an old entry; it holds nothing of
# the data but their types.

#: Layout of the entries (change it when what they hold changes).
ENTRY_FORMAT = 1
#: numba options of PyTensor's outer functions compiled in ``exact_float_math``.
_EXACT_OPTIONS = {"fastmath": False, "nopython": True, "boundscheck": None}


def entry_path(key: Any, build: Any = None) -> Path | None:
    """Where the entry of model ``key``, built by ``build``, lives (None when ``key`` has no
    stable text)."""
    import hashlib
    import json

    import pytensor

    text = repr(key)
    if " at 0x" in text:  # an object's default repr changes from process to process
        return None
    digest = hashlib.sha256(json.dumps([ENTRY_FORMAT, text, _versions(build)]).encode())
    name = f"{digest.hexdigest()[:40]}.json"
    return Path(pytensor.config.base_compiledir) / "journeymodel" / name


def _versions(build: Any = None) -> list[str]:
    """Versions of the libraries that shape the compiled code, and a hash of the source that
    builds the graph: journeymodel's fit package and the package of ``build`` (its module
    file outside journeymodel), or all of journeymodel when ``build`` is not a function."""
    import hashlib
    import inspect
    import sys
    from importlib.metadata import version

    import journeymodel

    root = Path(journeymodel.__file__).parent.resolve()
    module = sys.modules.get(build.__module__ or "") if inspect.isfunction(build) else None
    file = Path(getattr(module, "__file__", None) or root / "__init__.py").resolve()
    if module is None:
        files = sorted(root.rglob("*.py"))
    elif file.is_relative_to(root):
        files = sorted({*root.joinpath("fit").glob("*.py"), *file.parent.rglob("*.py")})
    else:
        files = sorted({*root.joinpath("fit").glob("*.py"), file})
    source = hashlib.sha256()
    for path in files:
        source.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return [*(version(p) for p in ("pymc", "pytensor", "numba", "nutpie")), source.hexdigest()]


def save_entry(path: Path, model: pm.Model, compiled: LogDensity) -> bool:
    """Record ``compiled`` (the log density of ``model``) at ``path`` for :func:`load_entry`.

    Call it inside :func:`journeymodel.fit.bayes.exact_float_math`, as the compiling.

    Nothing is written, and False returned, when a part cannot be loaded without PyMC: a
    function outside PyTensor's numba cache, coordinates that are not numbers or text, or
    chains' starts that the support point plus PyMC's jitter, drawn here, would not give
    bit for bit.
    """
    import json

    from journeymodel.io.outputs import write_text

    coords = {name: [int(v) if isinstance(v, (int, np.integer)) else v for v in index]
              for name, index in compiled.coords.items()}
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool)
               for values in coords.values() for v in values):
        return False
    functions = {"logp": _function_entry(compiled.logp),
                 "expand": _function_entry(compiled.expand) if compiled.derived else None}
    if functions["logp"] is None or (compiled.derived and functions["expand"] is None):
        return False
    support = _support_entry(model, compiled)
    if support is None:
        return False
    entry = {
        "format": ENTRY_FORMAT, "n_dim": compiled.n_dim, **functions, **support,
        "free": [[v.name, list(v.shape), list(v.dims)] for v in compiled.free],
        "derived": [[v.name, list(v.shape), list(v.dims)] for v in compiled.derived],
        "data_names": list(compiled.data_names),
        "data_types": {name: [dtype.str, list(shape)]
                       for name, (dtype, shape) in compiled.data_types.items()},
        "reparameterized": list(compiled.reparameterized),
        "coords": coords,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(entry), what="compile cache entry")
    return True


def load_entry(path: Path, data: Mapping[str, Any]) -> LogDensity | None:
    """The :class:`LogDensity` recorded at ``path``, its functions loaded from numba's cache,
    on ``data`` (every data argument; their values are not recorded). None when there is no
    entry, ``data`` lack a name, or numba's cache no longer holds a function (the caller
    then builds the model)."""
    import json

    t0 = time.perf_counter()
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if entry.get("format") != ENTRY_FORMAT or not set(entry["data_names"]) <= set(data):
        return None
    types = {name: (np.dtype(dtype), tuple(shape))
             for name, (dtype, shape) in entry["data_types"].items()}
    values = {name: np.array(data[name], dtype=types[name][0], order="C")
              for name in entry["data_names"]}
    args = tuple(values[name] for name in entry["data_names"])
    free = tuple(Variable(n, tuple(s), tuple(d)) for n, s, d in entry["free"])
    support_fn = _load_function(entry["support"], [*args])
    logp_fn = expand_fn = None
    if support_fn is not None:
        support = np.asarray(support_fn(*args)[0], dtype=np.float64)
        initial = jittered(support, free, entry["jitter"])
        start = initial(0)
        logp_fn = _load_function(entry["logp"], [start, *args])
        expand_fn = (_load_function(entry["expand"], [start, *args]) if entry["expand"]
                     else lambda *a: ())
    if logp_fn is None or expand_fn is None:
        return None
    return LogDensity(
        n_dim=int(entry["n_dim"]), logp=logp_fn, expand=expand_fn, initial_point=initial,
        free=free, derived=tuple(Variable(n, tuple(s), tuple(d))
                                 for n, s, d in entry["derived"]),
        data_names=tuple(entry["data_names"]), data=values, data_types=types,
        reparameterized=tuple(entry["reparameterized"]),
        coords={name: pd.Index(v) for name, v in entry["coords"].items()},
        timings={"numba": time.perf_counter() - t0})


def _function_entry(dispatcher: Any) -> dict[str, str] | None:
    """How to find a PyTensor-compiled numba function in numba's cache, or None."""
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    func = getattr(dispatcher, "py_func", None)
    if func is None or func not in CACHED_SRC_FUNCTIONS or getattr(
            dispatcher, "targetoptions", None) != _EXACT_OPTIONS:
        return None
    return {"source": func.__source__, "name": func.__name__, "module": func.__module__,
            "cache_key": CACHED_SRC_FUNCTIONS[func]}


def _load_function(spec: Mapping[str, str], example: list) -> Callable[..., Any] | None:
    """The numba function ``spec`` describes, loaded from numba's cache for the types of
    ``example`` (its arguments), or None when the cache does not hold it. Its source calls
    functions that do not exist in this process: numba cannot compile it, only load it."""
    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    func = compile_numba_function_src(spec["source"], spec["name"],
                                      global_env={"__name__": spec["module"]},
                                      cache_key=spec["cache_key"])
    dispatcher = numba.njit(func, cache=True, fastmath=False, boundscheck=None)
    try:
        dispatcher(*example)
    except Exception:  # noqa: BLE001 - not in the cache: numba failed to compile it
        return None
    dispatcher.disable_compile()
    return dispatcher


def _support_entry(model: pm.Model, compiled: LogDensity) -> dict[str, Any] | None:
    """The chains' starts without PyMC: a numba function of the data giving the support
    point (flat, transformed), and which of PyMC's jitter streams each variable draws from;
    None unless they reproduce PyMC's starts bit for bit."""
    import pytensor.tensor as pt
    from pymc.initial_point import make_initial_point_expression
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import ancestors
    from pytensor.tensor.random.variable import RandomGeneratorSharedVariable

    values = make_initial_point_expression(
        free_rvs=model.free_RVs, rvs_to_transforms=model.rvs_to_transforms,
        initval_strategies=model.rvs_to_initial_values, jitter_rvs=set(),
        default_strategy="support_point", return_transformed=True)
    flat = pt.concatenate([pt.as_tensor(v).astype("float64").ravel() for v in values])
    if any(isinstance(v, RandomGeneratorSharedVariable) for v in ancestors([flat])):
        return None  # a start drawn from the prior
    shared = _shared_inputs([flat])
    fixed = {s: pt.constant(s.get_value(), name=s.name) for s in shared
             if s.name not in compiled.data_names and s.name in model.dim_lengths}
    if not {s.name for s in shared if s not in fixed} <= set(compiled.data_names):
        return None  # data the log density does not take
    flat = clone_replace([flat], fixed)[0]  # dimension lengths: part of the model's key
    shared = _shared_inputs([flat])
    from pymc.pytensorf import compile as compile_pymc

    by_name = {s.name: s for s in shared}
    placeholders = [by_name[n].type(name=n) if n in by_name else pt.tensor(
        dtype=compiled.data_types[n][0].name, shape=compiled.data_types[n][1], name=n)
        for n in compiled.data_names]
    swap = {by_name[n]: p for p, n in zip(placeholders, compiled.data_names, strict=True)
            if n in by_name}
    with model:  # the caller's exact_float_math applies
        support_fn = compile_pymc(placeholders, clone_replace([flat], swap)[0], mode="NUMBA",
                                  on_unused_input="ignore").vm.jit_fn
    spec = _function_entry(support_fn)
    args = compiled.arguments()
    if spec is None:
        return None
    support = np.asarray(support_fn(*args)[0], dtype=np.float64)
    jitter = _jitter_streams(support, compiled)
    if jitter is None:
        return None
    return {"support": spec, "jitter": jitter}


def _jitter_streams(support: np.ndarray, compiled: LogDensity) -> list[int] | None:
    """Which of PyMC's jitter streams each free variable draws from (PyMC spawns one seed
    sequence per jittered variable, in its graph's order), checked on three seeds."""
    seed = 20261201
    pymc_start = compiled.initial_point(seed)
    cuts = np.cumsum([0] + [int(np.prod(v.shape)) for v in compiled.free])
    n = len(compiled.free)
    streams = []
    for i, v in enumerate(compiled.free):
        part = support[cuts[i]:cuts[i + 1]]
        found = [j for j in range(n) if np.array_equal(
            part + _uniform(seed, j, n, v.shape).ravel(), pymc_start[cuts[i]:cuts[i + 1]])]
        if len(found) != 1:
            return None
        streams.append(found[0])
    ours = jittered(support, compiled.free, streams)
    if all(np.array_equal(ours(s), compiled.initial_point(s)) for s in (0, 1, 2**31 - 2)):
        return streams
    return None


def _uniform(seed: int, stream: int, streams: int, shape: tuple[int, ...]) -> np.ndarray:
    sequence = np.random.SeedSequence(seed).spawn(streams)[stream]
    return np.random.Generator(np.random.PCG64(sequence)).uniform(-1, 1, size=shape)


def jittered(support: np.ndarray, free: tuple[Variable, ...],
              streams: list[int]) -> Callable[[int], np.ndarray]:
    """PyMC's chain start: the support point plus U(-1, 1) jitter, each variable's from its
    own stream of the seed."""
    cuts = np.cumsum([0] + [int(np.prod(v.shape)) for v in free])

    def initial(seed: int) -> np.ndarray:
        jitter = [_uniform(seed, s, len(free), v.shape).ravel()
                  for s, v in zip(streams, free, strict=True)]
        return np.concatenate([support[cuts[i]:cuts[i + 1]] + jitter[i]
                               for i in range(len(free))]).astype(np.float64)

    return initial
