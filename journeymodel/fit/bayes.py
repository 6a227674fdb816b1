"""Bayesian machinery shared by the PyMC models: sampling, convergence checks, HDIs, storage.

The public API is small and stable (other model modules import it):

:func:`sample`
    Sample a PyMC model with NUTS: nutpie when it is installed, else PyMC's own NUTS. nutpie
    samples the model's hand-written log density where the model registered one
    (:func:`register_native`, :mod:`journeymodel.fit.native`: numba C callbacks, no PyMC),
    else its log density compiled by :mod:`journeymodel.fit.logdensity` (PyTensor's
    numba code, cached on disk across processes). Compiled models are also kept in the process
    under a caller-given key, so refitting the same structure on new data (``pm.Data``
    values) does not compile again, and recorded on disk under that key: a later process
    given the key and every data value loads the compiled model without importing PyMC
    (:func:`journeymodel.fit.logdensity.load_entry`). Shows a rich progress bar on stderr.
    Returns a :class:`Sampling` with the posterior DataTree and compile / sampling seconds.
:func:`diagnose`
    R-hat (rank-normalised, max), bulk ESS (min) and divergences of a posterior, as
    :class:`Diagnostics` (computed as ArviZ does, without ArviZ: :mod:`.convergence`).
:func:`check_convergence`
    Compare :class:`Diagnostics` with the thresholds (R-hat <= 1.01, bulk ESS >= 400, no
    divergences) and issue a :class:`~journeymodel.errors.ConvergenceWarning` that lists the
    remedies when they fail; :func:`remedies` words them for the settings actually used.
:func:`interval`
    Posterior median, mean and highest-density interval (94 % by default) of a DataArray over
    ``chain`` and ``draw``.
:func:`storable_groups` / :func:`restore_posterior`
    Put the posterior groups (``posterior``, ``sample_stats``) into a model's DataTree as
    netCDF-safe child nodes, and get them back as a DataTree ArviZ accepts.

Examples
--------
>>> import pymc as pm
>>> from journeymodel.fit import bayes
>>> def build():
...     with pm.Model() as m:
...         pm.Normal("x", 0, 1)
...     return m
>>> s = bayes.sample(build, key="doc-normal", draws=500, chains=2, seed=1, progress=False)
>>> d = bayes.diagnose(s.tree)
>>> d.r_hat_max < 1.05 and d.divergences == 0
True

References
----------
Vehtari, A., Gelman, A., Simpson, D., Carpenter, B., Bürkner, P.-C. (2021). Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC. Bayesian
Analysis 16(2), 667-718 (the R-hat <= 1.01 and bulk ESS >= 400 thresholds).
"""

from __future__ import annotations

import importlib.util
import json
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from journeymodel.choices import SAMPLERS
from journeymodel.errors import ConvergenceWarning, OptionError

if TYPE_CHECKING:  # pragma: no cover
    import pymc as pm
    import xarray as xr

#: Convergence thresholds (Vehtari et al. 2021).
R_HAT_MAX = 1.01
ESS_BULK_MIN = 400.0
#: Default credible mass of reported intervals (ArviZ's convention).
HDI_PROB = 0.94
#: Names of the model-tree child nodes that hold the posterior.
POSTERIOR_GROUPS = ("posterior", "sample_stats")

DEFAULT_REMEDIES = (
    "run longer: more draws and tuning steps",
    "check the data for groups with almost no journeys, or merge them",
)
#: The least number of chains for R-hat to detect poor mixing reliably.
CHAINS_MIN = 4

#: Chains nutpie runs at once (None: one per core, nutpie's default). The log density is called
#: through Python (it holds the GIL), yet two threads still overlap the sampler's own work: sBG
#: churn on the 2,000-customer sample, 4 chains x 2,000 steps, took 7.2-15.4 s with 2 threads
#: against 13.9-23.0 s with 1 (wall, 2 cores at load 13-15; CPU 2.6-4.3 s either way).
NUTPIE_CORES = None

_CACHE_SIZE = 16
_COMPILED: OrderedDict[Hashable, Any] = OrderedDict()
#: Makers of hand-written log densities by the first item of a model key (register_native).
_NATIVE: dict[str, Callable[[Hashable, Mapping[str, Any] | None], Any]] = {}


@dataclass(frozen=True)
class Sampling:
    """What :func:`sample` returns.

    Attributes
    ----------
    tree : xarray.DataTree
        Groups ``posterior`` (variables with dims ``(chain, draw, ...)``) and ``sample_stats``
        (at least ``diverging``, shape ``(chain, draw)``).
    sampler : str
        ``"nutpie"`` or ``"pymc"``.
    compile_seconds : float
        Wall time spent compiling the model (0 when it came from the cache).
    sample_seconds : float
        Wall time spent sampling (tuning included).
    seed : int
        The integer seed handed to the sampler.
    timings : dict of str to float
        Seconds by step, for benchmarks: ``build`` (the PyMC model), ``graph`` (log density
        and gradient graphs), ``pytensor`` (PyTensor's rewrites and linking), ``numba``
        (numba compiling, or loading PyTensor's cached code). Empty for steps that did not
        run (a model from the in-process cache).
    """

    tree: xr.DataTree
    sampler: str
    compile_seconds: float
    sample_seconds: float
    seed: int
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Diagnostics:
    """Convergence diagnostics of one posterior.

    Attributes
    ----------
    r_hat_max : float
        Largest rank-normalised split R-hat over every scalar in the checked variables.
    ess_bulk_min : float
        Smallest bulk effective sample size.
    divergences : int
        Divergent transitions after tuning, all chains.
    chains, draws : int
        Posterior size.
    r_hat_worst, ess_worst : str
        Variable holding the largest R-hat and the smallest ESS.
    """

    r_hat_max: float
    ess_bulk_min: float
    divergences: int
    chains: int
    draws: int
    r_hat_worst: str = ""
    ess_worst: str = ""

    def problems(self, *, r_hat_max: float = R_HAT_MAX,
                 ess_bulk_min: float = ESS_BULK_MIN) -> list[str]:
        """Human-readable failed checks (empty when all pass)."""
        out = []
        if not self.r_hat_max <= r_hat_max:
            out.append(f"R-hat {self.r_hat_max:.3f} for {self.r_hat_worst} (want <= {r_hat_max})")
        if not self.ess_bulk_min >= ess_bulk_min:
            out.append(f"bulk ESS {self.ess_bulk_min:.0f} for {self.ess_worst} "
                       f"(want >= {ess_bulk_min:.0f})")
        if self.divergences > 0:
            out.append(f"{self.divergences} divergent transitions (want 0)")
        return out

    @property
    def ok(self) -> bool:
        """True when every check passes at the default thresholds."""
        return not self.problems()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, as used by ``inspect --json``."""
        d = asdict(self)
        d["r_hat_max"] = round(float(self.r_hat_max), 4)
        d["ess_bulk_min"] = round(float(self.ess_bulk_min), 1)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Diagnostics:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def sampler_name() -> str:
    """``"nutpie"`` when nutpie is importable, else ``"pymc"``."""
    return "nutpie" if importlib.util.find_spec("nutpie") is not None else "pymc"


def sample(
    build: Callable[[], pm.Model] | pm.Model,
    *,
    key: Hashable | None = None,
    data: Mapping[str, np.ndarray] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | np.random.Generator = 0,
    progress: bool = True,
    description: str = "Sampling",
    sampler: str | None = None,
    target_accept: float = 0.8,
    native: bool = True,
) -> Sampling:
    """Sample the posterior of a PyMC model with NUTS.

    Parameters
    ----------
    build : callable returning pymc.Model, or pymc.Model
        The model (or a function building it: it is not called when ``key`` is cached).
    key : hashable, optional
        Cache key of the compiled model. Give one that changes whenever the model's *structure*
        changes (parameter shapes, parameterisation); data that differ only in values go in
        ``data``. ``None`` disables caching.
    data : mapping of str to ndarray, optional
        Values for the model's ``pm.Data`` containers, set before sampling (same rank; the
        length may differ when no parameter's shape depends on it).
    draws, tune, chains : int
        Posterior draws and tuning steps per chain, and the number of chains.
    seed : int or numpy.random.Generator
        Same seed, same posterior.
    progress : bool
        Show a progress bar on stderr.
    description : str
        Label of the progress bar.
    sampler : {"nutpie", "pymc"}, optional
        Default: nutpie when installed.
    target_accept : float
        NUTS target acceptance rate in (0, 1); raise it (0.9, 0.95) to remove divergences
        at the cost of smaller steps.
    native : bool
        With nutpie, sample the model's hand-written log density when one is registered
        for ``key`` (:func:`register_native`); False: always the one PyTensor compiles from
        the PyMC model.

    Returns
    -------
    Sampling

    Raises
    ------
    OptionError
        ``draws``, ``tune`` or ``chains`` out of range, or an unknown ``sampler``.
    """
    check_sizes(draws=draws, tune=tune, chains=chains)
    sampler = sampler or sampler_name()
    if sampler not in SAMPLERS:
        raise OptionError(f"sampler must be 'nutpie' or 'pymc' (got {sampler!r})")
    if not 0 < target_accept < 1:
        raise OptionError(f"target_accept must be in (0, 1) (got {target_accept!r})")
    int_seed = int(np.random.default_rng(seed).integers(2**31 - 1))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    compiled = None
    if sampler == "nutpie" and native:
        with _status(progress, "Compiling the model"):
            compiled = _native(key, data)
    if compiled is not None:
        timings.update(compiled.timings)
    else:
        compiled = _compiled(build, key, data, sampler, progress, timings)
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    if sampler == "nutpie":
        tree = _sample_nutpie(compiled, data, draws=draws, tune=tune, chains=chains,
                              seed=int_seed, progress=progress, description=description,
                              target_accept=target_accept)
    else:
        tree = _sample_pymc(compiled, data, draws=draws, tune=tune, chains=chains,
                            seed=int_seed, progress=progress, description=description,
                            target_accept=target_accept)
    return Sampling(tree=tree, sampler=sampler, compile_seconds=compile_seconds,
                    sample_seconds=time.perf_counter() - t0, seed=int_seed,
                    timings={k: round(v, 4) for k, v in timings.items()})


def register_native(prefix: str, make: Callable[[Hashable, Mapping[str, Any] | None], Any]
                    ) -> None:
    """Sample the models whose key is a tuple starting with ``prefix`` through ``make(key,
    data)``: their hand-written :class:`~journeymodel.fit.native.NativeDensity`, or None
    for a variant it does not cover (compiled from PyMC then). A model module registers it
    when imported; the density must equal the PyMC model's (tested there)."""
    _NATIVE[prefix] = make


def _native(key: Hashable | None, data: Mapping[str, np.ndarray] | None) -> Any:
    """The hand-written density registered for ``key`` on ``data``, or None."""
    if not isinstance(key, tuple) or not key or not isinstance(key[0], str):
        return None
    make = _NATIVE.get(key[0])
    return None if make is None else make(key, data)


def check_sizes(**sizes: int) -> None:
    """Raise OptionError unless each of ``draws`` (>= 1), ``tune`` (>= 0) and ``chains`` (>= 1)
    given is an integer in range (not a bool)."""
    lows = {"draws": 1, "tune": 0, "chains": 1}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (
                value < lows[name]):
            raise OptionError(f"{name} must be an integer >= {lows[name]} (got {value!r})")


def exact_float_math():
    """Context in which PyTensor compiles to numba without fast-math (IEEE floating point).

    PyTensor's default numba flags (``reassoc``, ``contract``, ``afn``, ``arcp``, ``nsz``) let
    LLVM reorder sums, fuse multiply-adds and approximate functions differently depending on
    what it can see at once: a log density compiled fresh (its pieces inlined into one
    function) and the same density assembled from pieces loaded from the numba cache
    (``base_compiledir``, ``NUMBA_CACHE_DIR``) give results that differ in the last bits. NUTS
    amplifies such bits over its tuning steps into different posterior draws, so "same seed,
    same posterior" held only when the caches were in the same state. Measured on the BG/NBD
    churn model of the 2,000-customer sample data: with fast-math, 200 log-density-and-gradient
    evaluations hashed differently with empty and warm caches, and the posteriors of two fits
    with seed 21 differed by up to 1e-2 (cold vs warm) and by whole posterior widths (warm vs
    warm again); without it, every hash and every draw is identical. Compilation happens
    inside this context, so the flag applies to the compiled model only (the cache key of
    PyTensor's numba functions records it).
    """
    import pytensor

    return pytensor.config.change_flags(numba__fastmath=False)


def _compiled(build: Any, key: Hashable | None, data: Mapping[str, np.ndarray] | None,
              sampler: str, progress: bool, timings: dict[str, float]) -> Any:
    """The model compiled for ``sampler``: from this process's cache under ``key``, else
    loaded from an earlier process's (:func:`_load`), else compiled (:func:`_compile`)."""
    cache_key = None if key is None else (sampler, key)
    compiled = _COMPILED.get(cache_key) if cache_key is not None else None
    if compiled is not None:
        _COMPILED.move_to_end(cache_key)
        return compiled
    with _status(progress, "Compiling the model"):
        compiled = _load(key, build, data) if sampler == "nutpie" else None
        if compiled is None:
            compiled = _compile(build, sampler, timings, key=key)
        else:
            timings.update(compiled.timings)
    if cache_key is not None:
        _COMPILED[cache_key] = compiled
        while len(_COMPILED) > _CACHE_SIZE:
            _COMPILED.popitem(last=False)
    return compiled


def _load(key: Hashable | None, build: Any, data: Mapping[str, np.ndarray] | None) -> Any:
    """The :class:`~journeymodel.fit.logdensity.LogDensity` of model ``key`` compiled by an
    earlier process, loaded without PyMC (None when there is none to load, or ``data`` do
    not give every data argument)."""
    if key is None or not data:
        return None
    from journeymodel.fit.logdensity import entry_path, load_entry

    path = entry_path(key, build)
    return None if path is None else load_entry(path, data)


def _compile(build: Callable[[], pm.Model] | pm.Model, sampler: str,
             timings: dict[str, float] | None = None, key: Hashable | None = None) -> Any:
    """The model for ``sampler``: the PyMC model itself for ``"pymc"`` (PyMC compiles inside
    ``pm.sample``), its :class:`~journeymodel.fit.logdensity.LogDensity` for ``"nutpie"``
    (recorded for later processes under ``key``, see :func:`_load`)."""
    import pymc as pm

    t0 = time.perf_counter()
    model = build if isinstance(build, pm.Model) else build()
    if timings is not None:
        timings["build"] = time.perf_counter() - t0
    if sampler == "pymc":
        return model
    from journeymodel.fit.logdensity import compile_logdensity, entry_path, save_entry

    with exact_float_math():
        compiled = compile_logdensity(model)
        path = None if key is None else entry_path(key, build)
        if path is not None and not path.exists():
            save_entry(path, model, compiled)
    if timings is not None:
        timings.update(compiled.timings)
    return compiled


def _sample_nutpie(compiled: Any, data: Mapping[str, np.ndarray] | None, *, draws: int,
                   tune: int, chains: int, seed: int, progress: bool,
                   description: str, target_accept: float) -> xr.DataTree:
    from journeymodel.fit.native import NativeDensity
    from journeymodel.fit.nuts import import_nutpie, trace_tree

    nutpie = import_nutpie()  # without ArviZ: the raw trace becomes the DataTree here
    model = (compiled.nutpie_model() if isinstance(compiled, NativeDensity)
             else compiled.nutpie_model(data))
    with _progress_bar(progress, description, chains * (draws + tune)) as update:
        raw = nutpie.sample(model, draws=draws, tune=tune, chains=chains, seed=seed,
                            cores=NUTPIE_CORES, progress_bar=False, save_warmup=False,
                            target_accept=target_accept, return_raw_trace=True,
                            progress_callback=update if progress else None)
    return trace_tree(raw, reparameterized=compiled.reparameterized, coords=compiled.coords,
                      settings={"sampler": "nuts", "adaptation": "diag", "draws": draws,
                                "tune": tune, "chains": chains, "seed": seed,
                                "target_accept": target_accept})


def _sample_pymc(model: Any, data: Mapping[str, np.ndarray] | None, *, draws: int,
                 tune: int, chains: int, seed: int, progress: bool,
                 description: str, target_accept: float) -> xr.DataTree:
    import pymc as pm

    with model, exact_float_math():  # PyMC compiles its functions inside pm.sample
        if data:
            pm.set_data(dict(data))
        tree = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                         progressbar=progress and _terminal() is not None, nuts_sampler="pymc",
                         target_accept=target_accept,
                         compute_convergence_checks=False)
    return _keep_groups(tree)


def _keep_groups(tree: xr.DataTree) -> xr.DataTree:
    import xarray as xr

    return xr.DataTree.from_dict({f"/{g}": tree[g].to_dataset() for g in POSTERIOR_GROUPS})


def _terminal():
    """A rich console on stderr when stderr is a terminal, else None: spinners and progress
    bars are for people watching; in a pipe or a log file they would leave a blank line."""
    from rich.console import Console

    console = Console(stderr=True)
    return console if console.is_terminal else None


class _status:
    """A rich spinner on stderr while the model compiles (nothing when ``show`` is False or
    stderr is not a terminal)."""

    def __init__(self, show: bool, text: str) -> None:
        self.show, self.text, self._status = show, text, None

    def __enter__(self) -> _status:
        console = _terminal()
        if self.show and console is not None:
            self._status = console.status(self.text)
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)


class _progress_bar:
    """A rich progress bar on stderr fed by nutpie's progress callback (thread-safe); nothing
    when ``show`` is False or stderr is not a terminal."""

    def __init__(self, show: bool, description: str, total: int) -> None:
        self.show, self.description, self.total = show, description, total
        self._progress = None
        self._task = None

    def __enter__(self) -> Callable[[Sequence[Any]], None]:
        console = _terminal()
        if self.show and console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[div]} divergences"),
                console=console, transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total, div=0)
        return self.update

    def update(self, chains: Sequence[Any]) -> None:
        if self._progress is None:
            return
        done = sum(int(c.finished_draws) for c in chains)
        div = sum(int(c.divergences) for c in chains)
        self._progress.update(self._task, completed=done, div=div)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


# -- diagnostics -----------------------------------------------------------------------------


def diagnose(tree: xr.DataTree, var_names: Sequence[str] | None = None) -> Diagnostics:
    """R-hat, bulk ESS and divergences of ``tree`` (a :func:`sample` or stored posterior).

    Parameters
    ----------
    tree : xarray.DataTree
        Needs groups ``posterior`` and ``sample_stats`` (with ``diverging``).
    var_names : sequence of str, optional
        Variables to check (default: all posterior variables). Constant variables (R-hat NaN)
        are ignored.
    """
    from journeymodel.fit.convergence import ess_bulk, rhat_rank

    post = tree["posterior"].to_dataset()
    if var_names is not None:
        post = post[list(var_names)]
    varying = [v for v, da in post.data_vars.items() if da.size and np.ptp(da.values) > 0]
    post = post[varying]  # constants have no R-hat (it would divide by zero)
    rhat = _per_scalar(post, rhat_rank)
    ess = _per_scalar(post, ess_bulk)
    r_name, r_max = _extreme(rhat, largest=True)
    e_name, e_min = _extreme(ess, largest=False)
    div = tree["sample_stats"].to_dataset()["diverging"]
    return Diagnostics(r_hat_max=r_max, ess_bulk_min=e_min, divergences=int(div.values.sum()),
                       chains=int(post.sizes["chain"]), draws=int(post.sizes["draw"]),
                       r_hat_worst=r_name, ess_worst=e_name)


def _per_scalar(post: xr.Dataset, statistic: Callable[[np.ndarray], float]) -> xr.Dataset:
    """``statistic`` of the (chain, draw) draws of every scalar of every variable."""
    import xarray as xr

    out = {}
    for name, da in post.data_vars.items():
        other = [d for d in da.dims if d not in ("chain", "draw")]
        values = da.transpose("chain", "draw", *other).values
        flat = values.reshape(*values.shape[:2], -1)
        result = np.array([statistic(flat[:, :, k]) for k in range(flat.shape[2])])
        out[name] = xr.DataArray(result.reshape(values.shape[2:]), dims=other,
                                 coords={d: da.coords[d] for d in other if d in da.coords})
    return xr.Dataset(out)


def _extreme(ds: xr.Dataset, *, largest: bool) -> tuple[str, float]:
    """Name (with its coordinate) and value of the largest or smallest non-NaN entry."""
    found: list[tuple[float, str]] = []
    for name, da in ds.data_vars.items():
        values = np.asarray(da.values, dtype=float)
        if values.size == 0 or np.all(np.isnan(values)):
            continue
        flat = int(np.nanargmax(values) if largest else np.nanargmin(values))
        label = str(name)
        if da.ndim:
            idx = np.unravel_index(flat, da.shape)
            label += "[" + ",".join(str(da[d].values[i]) if d in da.coords else str(i)
                                    for d, i in zip(da.dims, idx, strict=True)) + "]"
        found.append((float(values.flat[flat]), label))
    if not found:
        return "", float("nan")
    value, label = max(found) if largest else min(found)
    return label, value


def check_convergence(diagnostics: Diagnostics, *, what: str = "model",
                      remedies: Sequence[str] = DEFAULT_REMEDIES,
                      r_hat_max: float = R_HAT_MAX, ess_bulk_min: float = ESS_BULK_MIN,
                      stacklevel: int = 2) -> bool:
    """Warn with :class:`ConvergenceWarning` (listing ``remedies``) when a check fails.

    Returns
    -------
    bool
        True when every check passed (no warning issued).

    Examples
    --------
    >>> import warnings
    >>> d = Diagnostics(r_hat_max=1.2, ess_bulk_min=50, divergences=0, chains=4, draws=100)
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     check_convergence(d, what="conversion model")
    False
    >>> "R-hat 1.200" in str(w[0].message)
    True
    """
    problems = diagnostics.problems(r_hat_max=r_hat_max, ess_bulk_min=ess_bulk_min)
    if not problems:
        return True
    message = (f"the {what} did not converge: {'; '.join(problems)}. "
               f"Its intervals may be wrong. Remedies: {'; '.join(remedies)}.")
    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel + 1)
    return False


def remedies(diagnostics: Diagnostics, *, draws: int, tune: int, chains: int,
             target_accept: float, extra: Sequence[str] = ()) -> list[str]:
    """What to change when ``diagnostics`` fail, worded for the settings of the fit.

    Only what applies is listed: more draws and tuning (doubled from the settings used) when
    R-hat or ESS fail, more chains only when fewer than :data:`CHAINS_MIN` ran, a higher
    target acceptance only when there were divergences and it can still go up; then
    ``extra`` (model-specific advice).

    Examples
    --------
    >>> d = Diagnostics(r_hat_max=1.02, ess_bulk_min=300, divergences=0, chains=4, draws=1000)
    >>> remedies(d, draws=1000, tune=1000, chains=4, target_accept=0.8)
    ['run longer: --draws 2000 --tune 2000 (this fit: 1000 and 1000)']
    """
    out = []
    mixing = not (diagnostics.r_hat_max <= R_HAT_MAX and diagnostics.ess_bulk_min
                  >= ESS_BULK_MIN)
    if mixing:
        out.append(f"run longer: --draws {2 * draws} --tune {max(2 * tune, 1000)} "
                   f"(this fit: {draws} and {tune})")
        if chains < CHAINS_MIN:
            out.append(f"run {CHAINS_MIN} chains (--chains {CHAINS_MIN}; this fit: {chains}) "
                       "so R-hat can detect poor mixing")
    if diagnostics.divergences and target_accept < 0.99:
        higher = 0.95 if target_accept < 0.95 else 0.99
        out.append(f"take smaller steps: --target-accept {higher} (this fit: "
                   f"{target_accept:g})")
    out.extend(extra)
    return out


# -- summaries -------------------------------------------------------------------------------


def interval(da: xr.DataArray, prob: float = HDI_PROB) -> xr.Dataset:
    """Posterior median, mean and HDI of ``da`` over ``chain`` and ``draw``.

    Report the median with the HDI: it always lies inside any interval holding more than half
    of the draws, whereas the mean of a skewed posterior (a weakly identified scale
    parameter) can fall outside its own HDI.

    Parameters
    ----------
    da : xarray.DataArray, dims (chain, draw, ...)
    prob : float
        Credible mass of the highest-density interval, in (0, 1).

    Returns
    -------
    xarray.Dataset
        Variables ``median``, ``mean``, ``hdi_low``, ``hdi_high``, each with the remaining dims
        of ``da``.
    """
    import xarray as xr

    from journeymodel.fit.intervals import hdi

    if not 0 < prob < 1:
        raise OptionError(f"the interval probability must be in (0, 1) (got {prob!r})")
    other = [d for d in da.dims if d not in ("chain", "draw")]
    low, high = hdi(draws_of(da), prob)
    coords = {d: da.coords[d] for d in other if d in da.coords}
    return xr.Dataset({
        "median": da.median(("chain", "draw")),
        "mean": da.mean(("chain", "draw")),
        "hdi_low": xr.DataArray(low, dims=other, coords=coords),
        "hdi_high": xr.DataArray(high, dims=other, coords=coords),
    })


def draws_of(da: xr.DataArray) -> np.ndarray:
    """Posterior draws of ``da`` flattened to shape ``(chains * draws, ...)`` (numpy)."""
    other = [d for d in da.dims if d not in ("chain", "draw")]
    values = da.transpose("chain", "draw", *other).values
    return values.reshape(-1, *values.shape[2:])


# -- storage in a model file -----------------------------------------------------------------


def storable_groups(tree: xr.DataTree) -> dict[str, xr.Dataset]:
    """The posterior groups of ``tree`` as netCDF-safe Datasets, keyed ``"posterior"``, ...

    Object-typed sample statistics are dropped, booleans become int8, attributes become
    strings or numbers (lists as JSON), coordinates of text become ``str`` objects; put the
    result into the model's DataTree: ``DataTree.from_dict({"/": root, **storable_groups(t)})``.
    """
    out = {}
    for group in POSTERIOR_GROUPS:
        ds = tree[group].to_dataset()
        keep = [v for v, da in ds.data_vars.items() if da.dtype.kind in "biuf"]
        ds = ds[keep]
        ds = ds.assign({v: ds[v].astype(np.int8) for v in keep if ds[v].dtype.kind == "b"})
        ds = ds.assign_coords({c: ds[c].values.astype(str).astype(object)
                               for c in ds.coords if ds[c].dtype.kind in "OUS"})
        ds.attrs = {k: _attr(v) for k, v in ds.attrs.items()}
        for v in ds.variables.values():
            v.attrs = {k: _attr(a) for k, a in v.attrs.items()}
        out[group] = ds
    return out


def _attr(value: Any) -> Any:
    if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(
            value, bool):
        return value
    return json.dumps(value, default=str)


def restore_posterior(model_tree: xr.DataTree) -> xr.DataTree:
    """The posterior groups stored by :func:`storable_groups`, as a DataTree ArviZ accepts.

    Raises
    ------
    KeyError
        A posterior group is missing from ``model_tree``.
    """
    import xarray as xr

    groups = {}
    for group in POSTERIOR_GROUPS:
        if group not in model_tree.children:
            raise KeyError(f"the model file has no {group!r} group")
        groups[f"/{group}"] = model_tree[group].to_dataset()
    return xr.DataTree.from_dict(groups)
