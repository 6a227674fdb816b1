"""Channel attribution on an absorbing Markov chain: exact removal effects, Shapley values, and
first/last/linear touch.

Removal effects are computed exactly by linear algebra, where ChannelAttribution estimates them by
simulating paths. Removing channel ``c`` sends every transition into a state that contains ``c``
to drop-off; its removal effect is ``1 - P(conversion | c removed) / P(conversion)``, and
conversions (and conversion value) are shared out in proportion to removal effects.

References
----------
.. [1] Anderl, E., Becker, I., von Wangenheim, F., Schumann, J. H. (2016). Mapping the customer
   journey: Lessons learned from graph-based online attribution modeling. International Journal
   of Research in Marketing 33(3), 457-474.
.. [2] Altomare, D., Loris, D. ChannelAttribution: Markov model for online multi-channel
   attribution (R and Python package).
.. [3] Shapley, L. S. (1953). A value for n-person games. Contributions to the Theory of Games
   II, 307-317.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np

from journeymodel.blas import one_blas_thread
from journeymodel.errors import OptionError
from journeymodel.models.markov.chain import (
    adjoint_vectors,
    draw_rows,
    draw_streams,
    mean_inverse,
    mean_preconditioner,
    pool_threads,
    start_values,
    stream_draws,
    thread_pool,
)

#: Largest number of channels for exact Shapley values (2**16 coalitions).
SHAPLEY_EXACT_MAX = 16
#: Most posterior draws for removal-effect intervals, and most random channel orders for
#: sampled Shapley values. Each draw's result is kept (for the quantiles), and at 100,000 draws
#: the Monte-Carlo error of a 94% interval's ends is already about 0.2% of its width (normal
#: posterior: sd of the 3% quantile = sqrt(0.03 * 0.97 / D) / phi(1.88) = 0.008 sd at
#: D = 100,000, against a width of 3.76 sd): more only costs time and memory.
MAX_DRAWS = 100_000
#: Default posterior draws for removal-effect intervals: the Monte-Carlo error of a 94%
#: interval's width (the sd over seeds of the width) is about 0.943 / sqrt(D) of the width for a
#: near-normal posterior (sqrt(2 * 0.03 * 0.97 / D) / phi(1.88) / 3.76), under 1% from
#: D = 8,900; measured on the tracker log (benchmarks/attribution_draws.py, 30 seeds): 2.7% at
#: 1,000 draws, 1.0% at 8,000, 0.7% at 16,000.
DEFAULT_DRAWS = 10_000
#: How removal-effect intervals are made: ``draws`` (quantiles of posterior draws, Monte-Carlo
#: error about 0.94 / sqrt(draws) of the width), ``linear`` (normal approximation from the
#: exact gradient, no Monte-Carlo error: :func:`linear_intervals`), ``auto`` (draws where the
#: chain is small enough for them to be cheap, else linear: :func:`interval_method`).
INTERVAL_METHODS = ("auto", "draws", "linear")
#: ``auto`` uses posterior draws while transient states x (channels + 1) is at most this: the
#: work of one draw grows with it, and up to it :data:`DEFAULT_DRAWS` draws cost about as much
#: as the point estimate or less (benchmarks/attribution_draws.py --linear); above, the
#: linearised intervals.
AUTO_DRAWS_MAX_WORK = 200
#: Memory for one batch of posterior draws (draws are solved in batches of this size).
DRAW_BATCH_BYTES = 256 * 2**20


def check_draws(n_draws, option: str = "n_draws", limit: int = MAX_DRAWS) -> int:
    """``n_draws`` as an int in 0 .. ``limit``, else an OptionError naming ``option`` and why.

    Examples
    --------
    >>> check_draws(1000)
    1000
    >>> check_draws(10**9, "--draws")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    journeymodel.errors.OptionError: --draws must be at most 100,000 (got 1,000,000,000): ...
    """
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)):
        raise OptionError(f"{option} must be a whole number (got {n_draws!r})")
    n_draws = int(n_draws)
    if n_draws < 0:
        raise OptionError(f"{option} must be >= 0 (got {n_draws})")
    if n_draws > limit:
        raise OptionError(
            f"{option} must be at most {limit:,} (got {n_draws:,}): at {limit:,} the "
            "Monte-Carlo error of the interval ends is already about 0.2% of the interval's "
            "width, and every draw's result is kept in memory")
    return n_draws


def draws_per_batch(nnz: int, n: int, n_sets: int) -> int:
    """Posterior draws solved at once so that one batch needs about
    :data:`DRAW_BATCH_BYTES`: per draw, the transition rows (a few copies of ``nnz`` values),
    per-state vectors and one value per removal scenario."""
    per_draw = 8 * (8 * nnz + 6 * n + 4 * n_sets)
    return max(1, DRAW_BATCH_BYTES // per_draw)


@dataclass
class Attribution:
    """Per-channel attribution; arrays have shape (n_channels,); NaN where not applicable."""

    method: str
    channels: tuple[str, ...]
    total_conversions: float
    total_value: float
    removal_effect: np.ndarray
    conversions: np.ndarray
    conversions_low: np.ndarray
    conversions_high: np.ndarray
    value: np.ndarray
    removal_effect_low: np.ndarray | None = None
    removal_effect_high: np.ndarray | None = None
    note: str = ""
    #: How the intervals were made: "draws", "linear", or "" (none).
    intervals: str = ""

    def to_json(self) -> dict:
        def num(x):
            return None if not np.isfinite(x) else float(x)

        return {
            "method": self.method,
            "total_conversions": float(self.total_conversions),
            "intervals": self.intervals or None,
            "channels": {
                name: {"removal_effect": num(self.removal_effect[i]),
                       "conversions": num(self.conversions[i]),
                       "conversions_low": num(self.conversions_low[i]),
                       "conversions_high": num(self.conversions_high[i]),
                       "value": num(self.value[i])}
                for i, name in enumerate(self.channels)},
        }


def channel_masks(state_codes: np.ndarray, n_channels: int) -> np.ndarray:
    """``masks[c, s]`` is True where transient state ``s`` contains channel ``c``.

    ``state_codes`` has shape (n_states, order), -1 padded (the start state is all -1).
    """
    n = state_codes.shape[0]
    masks = np.zeros((n_channels, n), bool)
    r, p = np.nonzero(state_codes >= 0)
    masks[state_codes[r, p], r] = True
    return masks


def interval_method(chain, n_channels: int, intervals: str = "auto") -> str:
    """``draws`` or ``linear``: what ``intervals`` (one of :data:`INTERVAL_METHODS`) means for
    this chain. ``auto`` decides by the chain's size alone (transient states x (channels + 1)
    against :data:`AUTO_DRAWS_MAX_WORK`), never by timing, so the same model and seed give the
    same intervals on any machine.

    Raises
    ------
    OptionError
        ``intervals`` not one of :data:`INTERVAL_METHODS`.
    """
    if intervals not in INTERVAL_METHODS:
        raise OptionError(f"intervals must be one of {', '.join(INTERVAL_METHODS)} "
                          f"(got {intervals!r})")
    if intervals != "auto":
        return intervals
    return "draws" if chain.n * (n_channels + 1) <= AUTO_DRAWS_MAX_WORK else "linear"


def removal_attribution(chain, state_codes, state_value, channels, *, total_conversions: float,
                        total_value: float, n_draws: int = 0, ci: float = 0.94,
                        seed: int | np.random.Generator = 0, intervals: str = "auto"
                        ) -> Attribution:
    """Exact removal-effect attribution, with credible intervals from posterior draws or from
    the linearised posterior.

    Parameters
    ----------
    chain : markov_chain.Chain
    state_codes : ndarray of int, shape (n_states, order)
        Touchpoint codes of each transient state (-1 padded).
    state_value : ndarray, shape (n_states,)
        Mean value of a conversion reached from each state (for value attribution).
    channels : tuple of str
    total_conversions, total_value : float
        What is shared out.
    n_draws : int
        Posterior draws of the transition rows for the intervals (0: no intervals, whatever
        ``intervals`` says), at most :data:`MAX_DRAWS`; drawn and solved in batches of
        :func:`draws_per_batch` (one generator, so the draws do not depend on the batch size).
    ci : float
        Credible interval mass (equal-tailed).
    intervals : {"auto", "draws", "linear"}
        How the intervals are made (:func:`interval_method`): quantiles of ``n_draws``
        posterior draws, or :func:`linear_intervals` (no Monte-Carlo error, ``n_draws`` only
        says whether to make them).

    Returns
    -------
    Attribution
        ``intervals`` says which method made the intervals ("" when there are none).

    Raises
    ------
    OptionError
        ``n_draws`` negative or above :data:`MAX_DRAWS`, unknown ``intervals``.
    """
    n_draws = check_draws(n_draws)
    how = interval_method(chain, len(channels), intervals)
    masks = channel_masks(state_codes, len(channels))
    removed = np.vstack([np.zeros((1, chain.n), bool), masks])
    conc = chain.csr
    mean = chain.p_data[None, :]
    conv_col = np.array([chain.n + chain.absorbing.index("conversion")])
    rhs_cols = np.repeat(conv_col, 2)
    weights = np.vstack([np.ones(chain.n), state_value])
    # mid-sized chains: one dense inverse for the point estimate and the linearised intervals
    inverse = mean_inverse(conc, chain.n, chain.p_data) if n_draws > 0 and how == "linear" \
        else None
    vals = start_values(conc, chain.n, mean, rhs_cols, weights, removed,
                        inverse=inverse)[0]  # (C+1, 2)
    re, conv = _shares(vals[None], total_conversions, 0)
    re_v, value = _shares(vals[None], total_value, 1)
    low = high = re_low = re_high = np.full(len(channels), np.nan)
    if n_draws > 0 and how == "linear":
        (re_low, re_high), (low, high) = linear_intervals(chain, removed, vals[:, 0],
                                                          total_conversions, ci, inverse)
    elif n_draws > 0:
        re_d, conv_d = _draw_shares(chain, n_draws, seed, conv_col, weights[:1], removed,
                                    total_conversions)
        q = [(1 - ci) / 2, (1 + ci) / 2]
        low, high = draw_quantiles(conv_d, q)
        re_low, re_high = draw_quantiles(re_d, q)
    return Attribution("removal", tuple(channels), total_conversions, total_value, re[0],
                       conv[0], low, high, value[0], re_low, re_high,
                       intervals=how if n_draws > 0 else "")


def linear_intervals(chain, removed: np.ndarray, p: np.ndarray, total: float, ci: float,
                     inverse: np.ndarray | None = None):
    """Removal-effect and conversion-share intervals by linearisation (the delta method) under
    the Dirichlet posterior of the rows: no Monte-Carlo error, the cost of a few solves.

    With ``p_s`` the conversion probability from the start in scenario ``s`` (0: nothing
    removed; ``c + 1``: channel ``c`` removed), ``dp_s / dP_ij = u_si v_sj``
    (:func:`~journeymodel.models.markov.chain.adjoint_vectors`). A removal effect
    ``1 - p_c / p_0`` and a share of ``total`` are smooth functions of the ``p_s``, so their
    gradient in ``P`` is ``G = sum_s a_s u_s v_s^T`` (chain rule). Rows are independent
    Dirichlet with mean ``m_i`` and concentration ``alpha_i``, so
    ``Var(sum_ij G_ij P_ij) = sum_i (sum_j m_ij G_ij^2 - (sum_j m_ij G_ij)^2) / (alpha_i + 1)``.
    The interval is the point estimate +- ``z sd`` (``z`` the normal quantile of ``ci``),
    clipped to the quantity's range ([0, 1]; [0, ``total``]), so it holds the point estimate.
    The start row is one of the rows (the first touchpoint's distribution is drawn as well).

    Parameters
    ----------
    chain : markov_chain.Chain
    removed : ndarray of bool, shape (1 + C, n)
        States removed per scenario; the first scenario removes nothing.
    p : ndarray, shape (1 + C,)
        Conversion probability from the start per scenario, at the posterior mean.
    total : float
        Conversions shared out.
    ci : float
    inverse : ndarray, shape (n, n), optional
        ``(I - Q)^-1`` at the posterior mean, if made already
        (:func:`~journeymodel.models.markov.chain.mean_inverse`).

    Returns
    -------
    (re_low, re_high), (conv_low, conv_high) : ndarrays of shape (C,)
    """
    from statistics import NormalDist  # scipy.stats costs about 1.5 s to import

    conc, n = chain.csr, chain.n
    m = chain.p_data
    conv_col = n + chain.absorbing.index("conversion")
    u, v = adjoint_vectors(conc, n, m, conv_col, removed, inverse=inverse)
    vcol = np.zeros((removed.shape[0], conc.shape[1]))
    vcol[:, :n] = v
    vcol[:, conv_col] = 1.0
    rows = np.repeat(np.arange(n), np.diff(conc.indptr))
    W = u[:, rows] * vcol[:, conc.indices]  # (1 + C, nnz): dp_s / dP at each entry
    jac, point, hi = _share_jacobian(p, total)  # (2C, 1 + C)
    alpha = conc.row_sums()
    # small products: split over BLAS threads they took 16 ms instead of 0.4 (order 3, on a
    # busy machine), with the same bits
    with one_blas_thread():
        G = jac @ W  # (2C, nnz): gradient of every reported quantity
        first = _row_totals(m * G * G, rows, n)  # (2C, n)
        second = _row_totals(m * G, rows, n)
        var = np.maximum((first - second**2) @ (1.0 / (alpha + 1.0)), 0.0)
    half = NormalDist().inv_cdf((1 + ci) / 2) * np.sqrt(var)
    low = np.clip(point - half, 0.0, hi)
    high = np.clip(point + half, 0.0, hi)
    C = removed.shape[0] - 1
    return (low[:C], high[:C]), (low[C:], high[C:])


def _row_totals(x: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Per row of ``x`` (k, nnz), the totals of its entries by chain row (``rows``: the row of
    each entry): shape (k, n). Added one entry at a time in entry order, as the product with
    the (nnz, n) indicator matrix in scipy.sparse added them (the same bits), without it."""
    k = x.shape[0]
    at = (np.arange(k)[:, None] * n + rows[None, :]).ravel()
    return np.bincount(at, weights=x.ravel(), minlength=k * n).reshape(k, n)


def _share_jacobian(p: np.ndarray, total: float):
    """Removal effects and shares of ``total`` (2C,) from start values ``p`` (1 + C,), their
    Jacobian in ``p`` (2C, 1 + C) and the upper end of each one's range."""
    C = len(p) - 1
    re, share = _shares(p[None, :, None], total, 0)
    re, share = re[0], share[0]
    jac = np.zeros((2 * C, C + 1))
    if p[0] > 0:
        jac[np.arange(C), 0] = p[1:] / p[0] ** 2
        jac[np.arange(C), np.arange(1, C + 1)] = -1.0 / p[0]
    s = re.sum()
    if s > 0:
        dshare = total * (np.eye(C) / s - re[:, None] / s**2)  # d share_c / d re_k
        jac[C:] = dshare @ jac[:C]
    hi = np.concatenate([np.ones(C), np.full(C, float(total))])
    return jac, np.concatenate([re, share]), hi


def _draw_shares(chain, n_draws, seed, conv_col, weights, removed, total):
    """Removal effects and conversion shares of ``n_draws`` posterior draws, (D, C) each.

    The draws come in blocks of :func:`~journeymodel.models.markov.chain.stream_draws`, each
    block from a random stream of its own, and are drawn and solved in batches of whole
    blocks, one batch per task on the pool's threads (at most one batch per thread in memory,
    see :func:`draws_per_batch`; in the calling thread when there is one batch or one thread).
    The iteration's preconditioners come from the posterior mean, so each draw's values are
    the same whatever the batch size and the number of threads."""
    conc, n = chain.csr, chain.n
    per_stream = stream_draws(conc.nnz)
    streams = draw_streams(seed, n_draws, per_stream)
    precond = mean_preconditioner(conc, n, chain.p_data, conv_col, weights, removed)
    workers = pool_threads()
    # streams per batch: within the memory of a batch, and a batch per thread where they fit
    per = max(1, min(draws_per_batch(conc.nnz, n, removed.shape[0]) // per_stream,
                     -(-len(streams) // workers)))
    starts = range(0, len(streams), per)

    def batch(s0: int):
        d0 = s0 * per_stream
        data = draw_rows(conc, min(per * per_stream, n_draws - d0), streams[s0:s0 + per])
        dvals = start_values(conc, n, data, conv_col, weights, removed, precond=precond)
        del data
        return _shares(dvals, total, 0, keep_draws=True)

    with one_blas_thread():  # batches in parallel, each single-threaded (see one_blas_thread)
        if len(starts) == 1 or workers == 1:
            parts = [batch(s0) for s0 in starts]
        else:  # tasks make their batch's draws when they start: at most one per thread
            parts = list(thread_pool().map(batch, starts))
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def draw_quantiles(x: np.ndarray, q) -> np.ndarray:
    """``np.quantile(x, q, axis=0)`` (its default method, "linear"; the same bits, NaN for a
    column holding one) of draws ``x`` (D, k), without its ``np.unique``, which imports
    numpy.ma in numpy 2.5 (8 ms of ``attribute --json``): shape (len(q), k).

    Examples
    --------
    >>> draw_quantiles(np.array([[1.0], [2.0], [4.0]]), [0.25, 0.75]).ravel().tolist()
    [1.5, 3.0]
    """
    n = x.shape[0]
    v = (n - 1) * np.asarray(q, np.float64)  # virtual indexes, as numpy's "linear"
    prev = np.floor(v)
    nxt = prev + 1
    above = v >= n - 1
    prev[above] = nxt[above] = -1
    gamma = (v - prev)[:, None]
    prev, nxt = prev.astype(np.intp), nxt.astype(np.intp)
    a = np.array(x, np.float64)  # a copy, partitioned in place
    a.partition(sorted({0, -1, *prev.tolist(), *nxt.tolist()}), axis=0)
    lo, hi = a[prev], a[nxt]
    diff = hi - lo
    out = lo + diff * gamma
    np.subtract(hi, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    np.copyto(out, a[-1], where=np.isnan(a[-1]))  # NaNs sort last
    return out


def _shares(vals: np.ndarray, total: float, j: int, keep_draws: bool = False):
    """Removal effects and shares of ``total`` from start values (D, 1 + C, m)."""
    full = vals[:, :1, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        re = np.where(full > 0, 1.0 - vals[:, 1:, j] / full, 0.0)
        re = np.clip(re, 0.0, 1.0)
        s = re.sum(axis=1, keepdims=True)
        share = np.where(s > 0, re / np.where(s > 0, s, 1.0), 0.0)
    return re, share * total


# ---------------------------------------------------------------------------------------------
# Heuristics


def heuristic_attribution(method: str, totals, channels, total_conversions, total_value
                          ) -> Attribution:
    """First-, last- or linear-touch attribution from the totals of
    :func:`journeymodel.stats.transitions.heuristic_totals` (``{method: (conversions, value)}``).
    """
    conv, value = totals[method]
    nan = np.full(len(channels), np.nan)
    return Attribution(method, tuple(channels), total_conversions, total_value, nan,
                       np.asarray(conv, float), nan, nan, np.asarray(value, float))


# ---------------------------------------------------------------------------------------------
# Shapley


def shapley_attribution(chain, state_codes, channels, *, total_conversions: float,
                        total_value: float, n_permutations: int = 2000,
                        seed: int | np.random.Generator = 0) -> Attribution:
    """Shapley values of channels, the chain's conversion probability as the value function.

    ``v(S)`` is P(conversion) from the start when only the channels in ``S`` exist (states
    holding any other channel are removed). Exact (all ``2**C`` coalitions, solved in batches)
    up to :data:`SHAPLEY_EXACT_MAX` channels; above, ``n_permutations`` random orders give an
    unbiased estimate and its standard error, reported as a 95% interval
    (``conversions_low``/``conversions_high``). Conversions and value are shared out in
    proportion to the Shapley values.

    Raises
    ------
    OptionError
        ``n_permutations`` < 1 or above :data:`MAX_DRAWS` (when the orders are sampled).
    """
    C = len(channels)
    masks = channel_masks(state_codes, C)
    if C <= SHAPLEY_EXACT_MAX:
        phi, se = _shapley_exact(chain, masks), None
        note = f"exact Shapley values over {2 ** C} coalitions"
    else:
        n_permutations = check_draws(n_permutations, "n_permutations")
        if n_permutations < 2:
            raise OptionError(f"n_permutations must be >= 2 for a standard error "
                              f"(got {n_permutations})")
        phi, se = _shapley_sampled(chain, masks, n_permutations, np.random.default_rng(seed))
        note = (f"Shapley values estimated from {n_permutations} random channel orders; "
                "intervals are +-1.96 Monte-Carlo standard errors")
    pos = np.clip(phi, 0, None)
    share = pos / pos.sum() if pos.sum() > 0 else np.zeros(C)
    low = high = np.full(C, np.nan)
    if se is not None and pos.sum() > 0:
        low = (phi - 1.96 * se) / pos.sum() * total_conversions
        high = (phi + 1.96 * se) / pos.sum() * total_conversions
    return Attribution("shapley", tuple(channels), total_conversions, total_value,
                       np.full(C, np.nan), share * total_conversions, low, high,
                       share * total_value, note=note,
                       intervals="permutations" if se is not None else "")


def _coalition_values(chain, masks: np.ndarray, coalitions: np.ndarray) -> np.ndarray:
    """P(conversion) from start for each coalition (bool (M, C): channels present)."""
    absent = ~coalitions  # (M, C)
    removed = (absent.astype(np.uint8) @ masks.astype(np.uint8)) > 0  # (M, n)
    conv_col = np.array([chain.n + chain.absorbing.index("conversion")])
    vals = start_values(chain.csr, chain.n, chain.p_data[None, :], conv_col,
                        np.ones((1, chain.n)), removed)
    return vals[0, :, 0]


def _shapley_exact(chain, masks: np.ndarray) -> np.ndarray:
    C = masks.shape[0]
    ids = np.arange(2**C)
    bits = ((ids[:, None] >> np.arange(C)) & 1).astype(bool)
    v = _coalition_values(chain, masks, bits)
    size = bits.sum(axis=1)
    weight = np.array([factorial(s) * factorial(C - s - 1) / factorial(C) for s in range(C)])
    phi = np.empty(C)
    for i in range(C):  # loop over channels only
        without = ids[~bits[:, i]]
        phi[i] = np.sum(weight[size[without]] * (v[without | (1 << i)] - v[without]))
    return phi


def _shapley_sampled(chain, masks, n_perm: int, rng: np.random.Generator):
    C = masks.shape[0]
    perms = np.argsort(rng.random((n_perm, C)), axis=1)  # (P, C) channel at each position
    rank = np.argsort(perms, axis=1)  # position of each channel
    # coalition before position t: channels with rank < t; t = 0..C
    t = np.arange(C + 1)
    per = max(1, DRAW_BATCH_BYTES // (8 * (C + 1) * (chain.n + C) * 4))  # orders per batch
    v = np.empty((n_perm, C + 1))
    for p0 in range(0, n_perm, per):  # bounded memory: the coalitions of a batch of orders
        coal = rank[p0:p0 + per, None, :] < t[None, :, None]  # (p, C+1, C)
        v[p0:p0 + per] = _coalition_values(chain, masks, coal.reshape(-1, C)).reshape(-1, C + 1)
    marg = np.diff(v, axis=1)  # (P, C): contribution of the channel at position t
    contrib = np.take_along_axis(marg, rank, axis=1)  # (P, C) by channel
    return contrib.mean(axis=0), contrib.std(axis=0, ddof=1) / np.sqrt(n_perm)
