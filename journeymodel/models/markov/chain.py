"""Absorbing Markov chains over touchpoint windows: the posterior and linear-algebra solves.

The states and their integer keys are defined with the counts, in
:mod:`journeymodel.stats.transitions` (ChannelAttribution's ``markov_model`` windows: the start
state ``0``, windows of up to ``order`` touchpoints, absorbing outcomes with negative keys).
:func:`build_chain` turns :class:`~journeymodel.stats.transitions.TransitionCounts` into the
Dirichlet posterior of every row; the solves give absorption probabilities, expected steps and
removal scenarios for every posterior draw.

The chain is built and solved (up to ``_DENSE_MAX`` states) with numpy alone: scipy.sparse
costs 0.2-0.3 s to import (scipy's array-API layer loads numpy.f2py and numpy.testing), a
sixth of a ``fit markov`` process at 100k customers (issue 20). :class:`Csr` holds the
matrices as arrays; ``Chain.conc`` and ``Chain.P`` give them as scipy matrices when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.blas import one_blas_thread
from journeymodel.data.journeyset import ranges
from journeymodel.errors import OptionError
from journeymodel.stats.transitions import ABSORBING, TransitionCounts

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp

_DENSE_MAX = 250  # chains up to this many transient states are solved densely
#: fundamental_solve is dense up to this many states: 80 ms on one thread at 1,111 states
#: (order 3), 0.2 s here, against 0.25-0.3 s to import scipy's sparse solvers (and 18 ms for
#: the LU)
_DENSE_SOLVE_MAX = 1500
_BLOCK_NNZ = 2_000_000  # entries per block-diagonal sparse batch
_PRECOND_MAX = 3000  # many draws of chains up to this size: iteration preconditioned by the mean
_PRECOND_MIN_DRAWS = 8  # fewer draws than this: direct sparse solves are cheaper
_ITER_TOL = 1e-10  # stop when no value moves by more than this (relative to the largest)
_ITER_MAX = 60  # draws not converged by then are solved directly
_KRYLOV_TOL = 1e-12  # chains above _PRECOND_MAX: largest residual, relative to the largest rhs


# ---------------------------------------------------------------------------------------------
# Sparse matrices as numpy arrays


@dataclass(frozen=True, eq=False)
class Csr:
    """A sparse matrix in canonical CSR form (column indices sorted within each row, no
    duplicates) as numpy arrays: what the fit needs of scipy's ``csr_matrix``, with the same
    layout and the same bits (:meth:`from_entries` and :meth:`plus` add as scipy does).

    Examples
    --------
    >>> m = Csr.from_entries(np.array([1, 0, 1]), np.array([0, 2, 0]), np.array([1., 2., 3.]),
    ...                      (2, 3))
    >>> m.columns(0, 3).tolist(), m.row_sums().tolist()
    ([[0.0, 0.0, 2.0], [4.0, 0.0, 0.0]], [2.0, 4.0])
    """

    data: np.ndarray  # (nnz,)
    indices: np.ndarray  # (nnz,) column of each entry
    indptr: np.ndarray  # (n_rows + 1,)
    shape: tuple[int, int]

    @classmethod
    def from_entries(cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                     shape: tuple[int, int], *, drop_zeros: bool = False) -> Csr:
        """The matrix with ``values`` at ``(rows, cols)``, duplicates summed in the order given
        (``scipy.sparse.csr_matrix((values, (rows, cols)))``); ``drop_zeros`` leaves out the
        entries that sum to 0, as scipy's sum of two matrices does."""
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        values = np.asarray(values, np.float64)
        lin = rows * shape[1] + cols
        order = np.argsort(lin, kind="stable")
        lin = lin[order]
        first = np.flatnonzero(np.r_[True, lin[1:] != lin[:-1]]) if len(lin) else lin
        data = np.add.reduceat(values[order], first) if len(first) else values[:0]
        lin = lin[first]
        if drop_zeros:
            keep = data != 0
            data, lin = data[keep], lin[keep]
        indptr = np.zeros(shape[0] + 1, np.int64)
        np.cumsum(np.bincount(lin // shape[1], minlength=shape[0]), out=indptr[1:])
        return cls(data, lin % shape[1], indptr, (int(shape[0]), int(shape[1])))

    @classmethod
    def of(cls, matrix) -> Csr:
        """A scipy sparse matrix's entries (made canonical first)."""
        m = matrix.tocsr()
        m.sum_duplicates()
        return cls(m.data, m.indices, m.indptr, tuple(int(s) for s in m.shape))

    @property
    def nnz(self) -> int:
        return len(self.data)

    def rows(self) -> np.ndarray:
        """The row of every entry."""
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))

    def row_sums(self, data: np.ndarray | None = None) -> np.ndarray:
        """Sum of every row (of ``data`` in this layout), added as scipy's ``sum(axis=1)``."""
        data = self.data if data is None else data
        out = np.zeros(self.shape[0])
        full = np.flatnonzero(np.diff(self.indptr))
        if len(full):
            out[full] = np.add.reduceat(data, self.indptr[full])
        return out

    def plus(self, other: Csr) -> Csr:
        """``self + other`` as scipy adds two canonical matrices (zero sums left out)."""
        return Csr.from_entries(np.concatenate([self.rows(), other.rows()]),
                                np.concatenate([self.indices, other.indices]),
                                np.concatenate([self.data, other.data]), self.shape,
                                drop_zeros=True)

    def columns(self, lo: int, hi: int, data: np.ndarray | None = None) -> np.ndarray:
        """Columns ``lo:hi`` as a dense array, shape (n_rows, hi - lo)."""
        data = self.data if data is None else data
        sel = (self.indices >= lo) & (self.indices < hi)
        out = np.zeros((self.shape[0], hi - lo))
        out[self.rows()[sel], self.indices[sel] - lo] = data[sel]
        return out

    def to_scipy(self, data: np.ndarray | None = None) -> sp.csr_matrix:
        """As a ``scipy.sparse.csr_matrix`` (sharing the index arrays)."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.data if data is None else data, self.indices, self.indptr),
                             shape=self.shape)


# ---------------------------------------------------------------------------------------------
# The chain


@dataclass(frozen=True, eq=False)
class Chain:
    """An absorbing chain: transient states ``0..n-1`` (0 = start), then absorbing states.

    ``csr`` is the Dirichlet posterior concentration of every row (shape
    (n, n + n_absorbing); a :class:`Csr`, or a scipy matrix, kept as a :class:`Csr`);
    ``conc`` is the same as a scipy CSR matrix, ``P`` its row-normalised mean and ``p_data``
    the mean's entries in ``csr``'s layout.
    """

    keys: np.ndarray  # (n,) window keys of transient states, keys[0] == 0 (start)
    absorbing: tuple[str, ...]
    csr: Csr

    def __post_init__(self) -> None:
        if not isinstance(self.csr, Csr):
            object.__setattr__(self, "csr", Csr.of(self.csr))

    @property
    def n(self) -> int:
        return len(self.keys)

    @cached_property
    def conc(self) -> sp.csr_matrix:
        return self.csr.to_scipy()

    @property
    def p_data(self) -> np.ndarray:
        """The posterior-mean transition probabilities in ``csr``'s layout."""
        c = self.csr
        return c.data / c.row_sums()[c.rows()]

    @property
    def P(self) -> sp.csr_matrix:
        return self.csr.to_scipy(self.p_data)


def build_chain(counts: TransitionCounts, prior: float = 0.0) -> tuple[Chain, list[str]]:
    """Posterior concentration per row: counts plus ``prior`` on every feasible next state.

    A feasible next state of a full window ``(a_1..a_k)`` is an observed window
    ``(a_2..a_k, x)`` or an absorbing state; the start state may move to any observed state;
    a window shorter than ``k`` (a whole short journey) only to absorbing states. Rows with no
    observed transitions (states seen only at the end of censored journeys) and states from
    which no absorbing state can be reached get concentration 1 on their feasible next states
    (respectively on the absorbing states), and a note says so.
    """
    notes: list[str] = []
    absorbing = tuple(name for name, key in zip(ABSORBING, (-1, -2, -3), strict=True)
                      if name != "churn" or np.any(counts.to_key == key))
    # the sorted distinct keys, with the start (union1d's np.unique imports numpy.ma: 8-12 ms)
    keys = np.sort(np.concatenate([counts.from_key, counts.to_key[counts.to_key >= 0],
                                   np.zeros(1, counts.from_key.dtype)]))
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    n = len(keys)
    fi = np.searchsorted(keys, counts.from_key)
    # absorbing keys -1, -2, -3 follow the transient states in ABSORBING order
    ti = np.where(counts.to_key >= 0, np.searchsorted(keys, np.maximum(counts.to_key, 0)),
                  n - 1 - counts.to_key)
    shape = (n, n + len(absorbing))
    conc = Csr.from_entries(fi, ti, counts.count, shape)
    base = len(counts.touchpoints) + 1
    empty = conc.row_sums() <= 0
    if prior > 0 or empty.any():
        fr, fc = feasible_pairs(keys, base, counts.order, counts.collapse, len(absorbing))
        alpha = np.where(empty[fr], max(prior, 1.0) if prior <= 0 else prior, prior)
        if prior <= 0:
            sel = empty[fr]
            fr, fc, alpha = fr[sel], fc[sel], alpha[sel]
        conc = conc.plus(Csr.from_entries(fr, fc, alpha, shape))
        if empty.any():
            notes.append(f"{int(empty.sum())} states were seen only at the end of in-flight "
                         "journeys; their rows use a uniform prior over feasible next states")
    conc = _fix_closed(conc, n, len(absorbing), notes)
    return Chain(keys, absorbing, conc), notes


#: Most feasible transitions :func:`feasible_pairs` builds (about 60 bytes each while the
#: prior matrix is assembled): beyond it the fit stops with a clear error instead of a
#: MemoryError (50,000 touchpoints at order 1 make 2.4e9).
MAX_FEASIBLE = 30_000_000


def feasible_pairs(keys: np.ndarray, base: int, order: int, collapse: bool, n_abs: int):
    """(row, column) of every feasible transition (see :func:`build_chain`)."""
    n = len(keys)
    length = np.zeros(n, np.int64)
    for p in range(order):
        length += keys >= base**p
    full = np.flatnonzero(length == order)
    prefix = keys[full] // base  # drop newest digit
    suffix = keys % base ** (order - 1)  # drop oldest digit
    srt = np.argsort(prefix, kind="stable")
    pre_sorted = prefix[srt]
    rows_full = full[full > 0]
    lo = np.searchsorted(pre_sorted, suffix[rows_full], "left")
    hi = np.searchsorted(pre_sorted, suffix[rows_full], "right")
    cnt = hi - lo
    total = int(cnt.sum()) + (n - 1) + n * n_abs
    if total > MAX_FEASIBLE:
        raise OptionError(
            f"the Markov chain would have {n:,} states and {total:,} feasible transitions to "
            f"give a prior to (about {total * 60 / 2**30:.0f} GiB; the limit is "
            f"{MAX_FEASIBLE:,}): the log has too many distinct touchpoints ({base - 1:,}) for a "
            "Markov chain; group rare touchpoints into one (e.g. 'other') before fitting")
    r = np.repeat(rows_full, cnt)
    c = full[srt][np.repeat(lo, cnt) + ranges(cnt)]
    if collapse:
        r, c = r[r != c], c[r != c]
    start_r = np.zeros(n - 1, np.int64)
    start_c = np.arange(1, n)
    abs_r = np.repeat(np.arange(n), n_abs)
    abs_c = np.tile(np.arange(n, n + n_abs), n)
    return np.concatenate([start_r, r, abs_r]), np.concatenate([start_c, c, abs_c])


def _fix_closed(conc: Csr, n: int, n_abs: int, notes: list[str]) -> Csr:
    """Give states that cannot reach any absorbing state a way out (concentration 1 each)."""
    # states that reach an absorbing state (through any stored entry), found backwards one
    # step at a time
    rows = conc.rows()
    reach = np.zeros(n + n_abs, bool)
    reach[n:] = True
    while True:
        new = (np.bincount(rows, weights=reach[conc.indices], minlength=n) > 0) & ~reach[:n]
        if not new.any():
            break
        reach[:n][new] = True
    stuck = np.flatnonzero(~reach[:n])
    if len(stuck):
        notes.append(f"{len(stuck)} states never led to an outcome (loops seen only in "
                     "in-flight journeys); they were given a uniform prior over outcomes")
        extra = Csr.from_entries(np.repeat(stuck, n_abs),
                                 np.tile(np.arange(n, n + n_abs), len(stuck)),
                                 np.ones(len(stuck) * n_abs), conc.shape)
        conc = conc.plus(extra)
    return conc


# ---------------------------------------------------------------------------------------------
# Solves


def fundamental_solve(chain_P: Csr | sp.csr_matrix, n: int, rhs: np.ndarray) -> np.ndarray:
    """Solve ``(I - Q) X = rhs`` for the transient block ``Q`` of ``chain_P`` (a :class:`Csr`
    or a scipy matrix).

    ``rhs`` has shape (n,) or (n, m); used for absorption probabilities (rhs = the absorbing
    columns of P) and expected steps (rhs = ones).
    """
    rhs = np.asarray(rhs, np.float64)
    if n <= _DENSE_SOLVE_MAX:  # a dense LAPACK solve, and no import of scipy
        if isinstance(chain_P, Csr):
            Q = chain_P.columns(0, n)
        else:
            Q = chain_P[:, :n].toarray()
        # one thread: the same bits on every machine (a threaded solve's depend on the split),
        # and faster on a busy one (order 3: 80 ms against 170 ms with two threads)
        with one_blas_thread():
            return np.linalg.solve(np.eye(n) - Q, rhs)
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla  # ~50 ms (up to 0.3 s cold) to import: only when needed

    if isinstance(chain_P, Csr):
        chain_P = chain_P.to_scipy()
    Q = chain_P[:, :n]
    return spla.splu(sp.csc_matrix(sp.identity(n) - Q)).solve(rhs)


#: Fewest posterior draws per random stream when the draws come from several streams
#: (:func:`draw_streams`): each block of :func:`stream_draws` draws has its own generator, so
#: blocks can be drawn in parallel and every draw is the same whatever the batches and threads.
STREAM_DRAWS = 16
#: Gamma variates a random stream gives at most (draws x transitions, see :func:`stream_draws`).
STREAM_VARIATES = 2**16


def stream_draws(nnz: int) -> int:
    """Posterior draws per random stream for a chain with ``nnz`` transitions: the largest
    power of two whose draws hold at most :data:`STREAM_VARIATES` gamma variates, and at least
    :data:`STREAM_DRAWS`.

    A stream costs a generator and a call of its own (about 30 us): 10,000 draws of an order-1
    chain (130 transitions) in 625 streams of 16 spent more on them than on the variates. A
    function of the chain's size alone, so a draw's values depend on the seed and its index
    only (not on the batches, the threads or how many draws there are).

    Examples
    --------
    >>> stream_draws(132), stream_draws(1_500), stream_draws(15_000)
    (256, 32, 16)
    """
    per = STREAM_DRAWS
    while 2 * per * max(nnz, 1) <= STREAM_VARIATES:
        per *= 2
    return per


@dataclass(frozen=True)
class DrawStreams:
    """Random streams of posterior draws: ``generators[i]`` gives draws
    ``i * draws .. (i + 1) * draws - 1`` (the last stream the rest)."""

    generators: tuple[np.random.Generator, ...]
    draws: int = STREAM_DRAWS

    def __len__(self) -> int:
        return len(self.generators)

    def __getitem__(self, i: slice) -> DrawStreams:
        return DrawStreams(self.generators[i], self.draws)


def draw_streams(seed: int | np.random.Generator, n_draws: int,
                 per: int = STREAM_DRAWS) -> DrawStreams:
    """One generator per block of ``per`` draws, spawned from ``seed``
    (``numpy.random.Generator.spawn``: independent streams, the same for the same seed)."""
    return DrawStreams(tuple(np.random.default_rng(seed).spawn(-(-n_draws // per))), per)


def draw_rows(conc: Csr | sp.csr_matrix, n_draws: int, rng) -> np.ndarray:
    """Posterior draws of every row (Dirichlet via gamma variates), shape (n_draws, nnz).

    Entries follow ``conc``'s CSR layout; all rows and draws in one vectorised call.
    ``rng`` is a generator, or :class:`DrawStreams` (or a list of generators giving
    :data:`STREAM_DRAWS` draws each), each stream giving its block of draws (the last the
    rest), one after the other in the calling thread.
    """
    row_of = np.repeat(np.arange(conc.shape[0]), np.diff(conc.indptr))
    if isinstance(rng, np.random.Generator):
        g = rng.standard_gamma(np.broadcast_to(conc.data, (n_draws, conc.nnz)))
        _normalise_rows(conc, g, row_of)
        return g
    per = rng.draws if isinstance(rng, DrawStreams) else STREAM_DRAWS
    gens = rng.generators if isinstance(rng, DrawStreams) else rng
    g = np.empty((n_draws, conc.nnz))
    for i, gen in enumerate(gens):  # loop over streams only (a few per batch)
        part = g[i * per:(i + 1) * per]
        gen.standard_gamma(np.broadcast_to(conc.data, part.shape), out=part)
        # each block while it is in the cache, with temporaries of its size (a stream's draws
        # hold at most STREAM_VARIATES values): 10,000 draws at order 1 made two of 5.4 MB
        _normalise_rows(conc, part, row_of)
    return g


def _normalise_rows(conc: Csr | sp.csr_matrix, g: np.ndarray, row_of: np.ndarray) -> None:
    """Divide gamma variates ``g`` (draws, nnz) by their row's sum in place: Dirichlet draws.
    Every value is divided by its own draw's row sum, so the bits do not depend on how many
    draws ``g`` holds. ``row_of`` is the row of every entry."""
    counts = np.diff(conc.indptr)
    nonempty = counts > 0
    if nonempty.all():
        sums = positive = np.add.reduceat(g, conc.indptr[:-1], axis=1)
    else:
        sums = np.zeros((g.shape[0], conc.shape[0]))
        sums[:, nonempty] = positive = np.add.reduceat(g, conc.indptr[:-1][nonempty], axis=1)
    # each entry's row sum, laid out as g (C order): sums[:, row_of] is in F order, and the
    # division of a C-ordered array by it ran 5 times slower
    s = np.repeat(sums, counts, axis=1)
    if (positive > 0).all():
        g /= s
        return
    np.divide(g, s, out=g, where=s > 0)
    # gamma variates with tiny shapes can all underflow to 0 in a row: use the mean there
    zero = s <= 0
    if zero.any():
        rows = Csr(conc.data, conc.indices, conc.indptr, conc.shape).row_sums()  # as scipy's
        mean = conc.data / rows[row_of]
        g[zero] = np.broadcast_to(mean, g.shape)[zero]


def start_values(conc: sp.csr_matrix, n: int, data: np.ndarray, rhs_cols: np.ndarray,
                 rhs_weight: np.ndarray, removed: np.ndarray, start: int = 0,
                 precond: MeanPreconditioner | None = None,
                 inverse: np.ndarray | None = None) -> np.ndarray:
    """Absorption values at the start state for every draw and every set of removed states.

    Parameters
    ----------
    conc : csr_matrix, shape (n, n + n_abs)
        Gives the sparsity pattern; ``data`` the probabilities.
    data : ndarray, shape (n_draws, nnz)
        Transition probabilities in ``conc``'s layout, one row per draw.
    rhs_cols : ndarray of int, shape (m,)
        Absorbing columns whose probabilities form right-hand sides (e.g. conversion).
    rhs_weight : ndarray, shape (m, n)
        Per right-hand side, a weight per transient state multiplying that column (ones for the
        conversion probability; mean conversion value for value-weighted conversion).
    removed : ndarray of bool, shape (n_sets, n)
        States removed in each scenario: transitions into them go to drop-off.
    precond : MeanPreconditioner, optional
        For posterior draws solved in several batches: the preconditioners of the iteration
        (mid-sized chains), made once from the posterior mean instead of once per batch from
        the batch's own mean. Each draw's value is then the same whatever batch it is in.
    inverse : ndarray, shape (n, n), optional
        For one draw (a point estimate) of a mid-sized chain: its :func:`mean_inverse`, made
        once for these values and :func:`adjoint_vectors`.

    Returns
    -------
    ndarray, shape (n_draws, n_sets, m)
    """
    if n <= _DENSE_MAX or (data.shape[0] == 1 and n <= _DENSE_SOLVE_MAX):
        # small chains; or a point estimate of a mid-sized chain (order 3: 1,111 states): one
        # dense inverse on one thread and the scenarios by Schur complements, without
        # importing scipy's sparse solvers (0.25-0.3 s; issue 20). The transient values are
        # read from data where the inverses need them (no copy of them: 4 MB a batch of
        # 5,120 draws at order 1). One thread also for a point estimate: its bits must not
        # depend on the cores.
        qr, qc, at, rhs = _transient_split(conc, n, data, rhs_cols, rhs_weight, values=False)
        with one_blas_thread():
            return _dense_start(n, qr, qc, data, rhs, removed, start,
                                inverse if n > _DENSE_MAX else None, at=at)
    qr, qc, qd, rhs = _transient_split(conc, n, data, rhs_cols, rhs_weight)
    if n <= _PRECOND_MAX and data.shape[0] >= _PRECOND_MIN_DRAWS:
        with one_blas_thread():  # also here: 1.8 s vs 2.9 s threaded (order 3, 200 draws)
            return _iterative_start(n, qr, qc, qd, rhs, removed, start, precond)
    if n > _PRECOND_MAX:
        return _krylov_start(n, qr, qc, qd, rhs, removed, start)
    return _sparse_start(n, qr, qc, qd, rhs, removed, start)


def _krylov_start(n, qr, qc, qd, rhs, removed, start):
    """Large chains (order 4: 11,111 states at 10 touchpoints): each draw and scenario by
    BiCGSTAB to a relative residual of ``_KRYLOV_TOL``, checked afterwards; a solve that does
    not get there is done directly (:func:`_sparse_start`). Sparse LU of these chains fills in
    almost densely (a window graph has no small separators): 279 s for the 11 scenarios of
    one point estimate at 1M journeys, against about 1 s each by iteration."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import bicgstab

    D, S, m = qd.shape[0], removed.shape[0], rhs.shape[2]
    out = np.zeros((D, S, m))
    for d in range(D):  # loop over draws and scenarios only; each solve is vectorised
        A = sp.csr_matrix((np.concatenate([-qd[d], np.ones(n)]),
                           (np.concatenate([qr, np.arange(n)]),
                            np.concatenate([qc, np.arange(n)]))), shape=(n, n))
        for s_ in range(S):
            if removed[s_, start]:
                continue
            keep = np.flatnonzero(~removed[s_])
            Ak = A[keep][:, keep]
            at = int(np.searchsorted(keep, start))
            for j in range(m):
                b = rhs[d, keep, j]
                x, info = bicgstab(Ak, b, rtol=_KRYLOV_TOL / 10, atol=0.0, maxiter=5000)
                res = np.abs(Ak @ x - b).max()
                if info != 0 or not res <= _KRYLOV_TOL * max(np.abs(b).max(), 1e-300):
                    x = _sparse_start(n, qr, qc, qd[d:d + 1], rhs[d:d + 1, :, j:j + 1],
                                      removed[s_:s_ + 1], start)[0, 0, 0]
                    out[d, s_, j] = x
                    continue
                out[d, s_, j] = x[at]
    return out


def _transient_split(conc, n, data, rhs_cols, rhs_weight, values: bool = True):
    """Rows, columns and values (D, nnz_Q) of the transient block, and the right-hand sides
    (D, n, m) of :func:`start_values`; with ``values=False``, instead of the values, their
    entries (nnz_Q,): the values are ``data[:, entries]``."""
    rows = np.repeat(np.arange(conc.shape[0]), np.diff(conc.indptr))
    cols = conc.indices
    q = cols < n
    qr, qc, qd = rows[q], cols[q], data[:, q] if values else np.flatnonzero(q)
    rhs = np.zeros((data.shape[0], n, len(rhs_cols)))
    for j, col in enumerate(rhs_cols):
        sel = cols == col
        at = rows[sel]
        add = data[:, sel] * rhs_weight[j][at]
        if np.all(at[1:] > at[:-1]):  # one entry per row (a canonical CSR): no np.add.at
            rhs[:, at, j] += add
        else:
            np.add.at(rhs[:, :, j], (slice(None), at), add)
    return qr, qc, qd, rhs


def mean_preconditioner(conc: sp.csr_matrix, n: int, mean: np.ndarray, rhs_cols: np.ndarray,
                        rhs_weight: np.ndarray, removed: np.ndarray
                        ) -> MeanPreconditioner | None:
    """The :class:`MeanPreconditioner` at the transition probabilities ``mean`` (``conc``'s
    layout, shape (nnz,)) for :func:`start_values` of many draws, or None where the chain's
    size does not take the iteration (small chains are solved densely, large ones directly)."""
    if n <= _DENSE_MAX or n > _PRECOND_MAX:
        return None
    qr, qc, qd, rhs = _transient_split(conc, n, mean[None, :], rhs_cols, rhs_weight)
    return MeanPreconditioner(n, qr, qc, qd[0], rhs[0], removed)


#: The name prefix of :func:`thread_pool`'s threads (work already on one runs in place).
POOL_THREAD_PREFIX = "journeymodel-draws"


def thread_pool():
    """The process's pool of worker threads, one per core (made when first asked for): the
    posterior draws' batches, and the Markov fits' holding times made beside the transition
    counts. Its tasks are numpy and scipy calls that release the GIL."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(pool_threads(), thread_name_prefix=POOL_THREAD_PREFIX)
    return _POOL


def pool_threads() -> int:
    """Threads of :func:`thread_pool`: one per core, at most 8."""
    import os

    return max(1, min(os.cpu_count() or 1, 8))


_POOL = None


def mean_inverse(conc: Csr, n: int, mean: np.ndarray) -> np.ndarray | None:
    """``(I - Q)^-1`` at the transition probabilities ``mean`` (``conc``'s layout, shape
    (nnz,)) for chains whose point estimate (:func:`start_values`) and adjoint vectors
    (:func:`adjoint_vectors`) both come from this dense inverse (mid-sized chains: order 3),
    else None. Made once for both, it halves the cost of linearised intervals (at 1,111
    states the inverse is 0.1-0.17 s on one thread); the same bits as each made its own."""
    if not _DENSE_MAX < n <= _DENSE_SOLVE_MAX:
        return None
    rows = np.repeat(np.arange(conc.shape[0]), np.diff(conc.indptr))
    q = conc.indices < n
    with one_blas_thread():
        return _inverses(n, rows[q] * n + conc.indices[q], mean[None, q])[0]


def _inverses(n: int, lin: np.ndarray, qd: np.ndarray, at: np.ndarray | None = None
              ) -> np.ndarray:
    """``(I - Q_d)^-1`` of every draw, shape (D, n, n), from the transient entries' values
    ``qd`` (D, nnz_Q) at their flat indices ``lin`` (each entry once: a canonical CSR); with
    ``at``, ``qd`` holds every entry (D, nnz) and the transient ones are ``qd[:, at]``."""
    dd = qd.shape[0]
    if at is None:
        A = np.zeros((dd, n * n))
        A[:, lin] = np.subtract(0.0, qd)
    elif 2 * len(lin) >= n * n:  # a dense block (order 1): gathered, no copy of the values
        pos = np.zeros(n * n, np.intp)
        pos[lin] = at
        missing = np.ones(n * n, bool)
        missing[lin] = False
        A = np.take(qd, pos, axis=1)
        np.subtract(0.0, A, out=A)
        A[:, missing] = 0.0
    else:
        A = np.zeros((dd, n * n))
        A[:, lin] = np.subtract(0.0, qd[:, at])
    A[:, ::n + 1] += 1.0
    return np.linalg.inv(A.reshape(dd, n, n))


def _dense_start(n, qr, qc, qd, rhs, removed, start, inverse=None, at=None):
    """Dense path: one inverse ``B = (I - Q)^-1`` per draw (``inverse`` for one draw, when
    given), then every removal scenario by the Schur complement: with ``x = B rhs`` and removed
    states ``R``, ``x_start(R) = x_start - B[start, R] B[R, R]^-1 x[R]`` (scenarios batched by
    ``|R|``). The values ``qd`` are those of the entries ``(qr, qc)``, or with ``at`` those of
    every entry (see :func:`_inverses`)."""
    D, S, m = qd.shape[0], removed.shape[0], rhs.shape[2]
    out = np.empty((D, S, m))
    size = removed.sum(axis=1)
    per = max(1, 8_000_000 // (n * n))
    lin = qr * n + qc  # canonical CSR: every entry once
    for d0 in range(0, D, per):
        dd = min(per, D - d0)
        if inverse is not None and D == 1:
            B = inverse[None]
        else:
            B = _inverses(n, lin, qd[d0:d0 + dd], at)
        x = B @ rhs[d0:d0 + dd]  # (dd, n, m)
        y = B[:, start, :]  # (dd, n)
        # scenarios grouped by how many states they remove (np.unique would import numpy.ma,
        # 8 ms, in numpy 2.5)
        for r in np.flatnonzero(np.bincount(size)):
            sc = np.flatnonzero(size == r)
            if r == 0:
                out[d0:d0 + dd, sc] = x[:, None, start, :]
                continue
            idx = np.nonzero(removed[sc])[1].reshape(len(sc), r)  # (s, r)
            chunk = max(1, 4_000_000 // (dd * r * r))
            for c0 in range(0, len(sc), chunk):
                ii = idx[c0:c0 + chunk]
                Brr = B[:, ii[:, :, None], ii[:, None, :]]  # (dd, s, r, r)
                xr = x[:, ii, :]  # (dd, s, r, m)
                if r == 1:  # scenarios removing one state (order 1): no LAPACK call each
                    z = _one_by_one(Brr, xr)
                else:
                    z = np.linalg.solve(Brr, xr)
                corr = np.einsum("dsr,dsrm->dsm", y[:, ii], z)
                out[d0:d0 + dd, sc[c0:c0 + chunk]] = x[:, None, start, :] - corr
    return out


def _one_by_one(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.linalg.solve(a, b)`` for 1 x 1 systems ``a`` (..., 1, 1) and ``b`` (..., 1, m),
    with the bits of numpy's OpenBLAS solve (which divides for one right-hand side and
    multiplies by the reciprocal for several) without its call per system (10,000 draws x 10
    scenarios: 10 ms)."""
    return b / a if b.shape[-1] == 1 else b * (1.0 / a)


def _sparse_start(n, qr, qc, qd, rhs, removed, start):
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    D, S = qd.shape[0], removed.shape[0]
    nnz = len(qr)
    pairs = np.stack(np.meshgrid(np.arange(D), np.arange(S), indexing="ij"), -1).reshape(-1, 2)
    out = np.empty((D, S, rhs.shape[2]))
    per = max(1, _BLOCK_NNZ // max(nnz + n, 1))
    for b0 in range(0, len(pairs), per):
        blk = pairs[b0:b0 + per]
        B = len(blk)
        keep = ~removed[blk[:, 1]]  # (B, n)
        ok = keep[:, qr] & keep[:, qc]  # (B, nnz)
        bi, ei = np.nonzero(ok)
        r = bi * n + qr[ei]
        c = bi * n + qc[ei]
        v = -qd[blk[bi, 0], ei]
        diag = np.arange(B * n)
        A = sp.csc_matrix((np.concatenate([v, np.ones(B * n)]),
                           (np.concatenate([r, diag]), np.concatenate([c, diag]))),
                          shape=(B * n, B * n))
        b = (rhs[blk[:, 0]] * keep[:, :, None]).reshape(B * n, -1)
        x = splu(A).solve(b).reshape(B, n, -1)
        out[blk[:, 0], blk[:, 1]] = x[:, start, :]
    return out


def _iterative_start(n, qr, qc, qd, rhs, removed, start, precond=None):
    """Many draws of a mid-sized chain: per scenario, iterate
    ``x <- x + M^-1 (rhs - (I - Q_d) x)`` for all draws at once, where ``M`` is ``I - Q`` at the
    mean restricted to the kept states (:class:`MeanPreconditioner`). Draws scatter little
    around their mean, so the error shrinks by a large factor per step; each step is one
    block-diagonal sparse matvec over the draws still iterating and one dense product.
    ``M^-1`` is kept in float32 (twice as fast): it only steers the steps, while residuals and
    values stay float64, so the fixed point is exact. Draws not converged after ``_ITER_MAX``
    steps are solved directly (:func:`_sparse_start`), so the result is that of a direct solve
    to about ``_ITER_TOL / 10`` relative (the error shrinks ten-fold or more per step).
    Without ``precond``, the mean is that of the draws given."""
    D, S, m = qd.shape[0], removed.shape[0], rhs.shape[2]
    if precond is None:
        precond = MeanPreconditioner(n, qr, qc, qd.mean(axis=0), rhs.mean(axis=0), removed)
    Q = interleaved_blocks(n, qr, qc, qd)
    b = np.ascontiguousarray(rhs.transpose(1, 0, 2))  # (n, D, m)
    out = np.zeros((D, S, m))
    for s in range(S):  # loop over scenarios only; all draws together
        if removed[s, start]:
            continue  # no way out of a removed start: values are 0, as in the direct solve
        keep, minv, x0 = precond.scenario(s)
        x, done = _precond_iterate(Q, b, keep, minv, x0)
        out[:, s] = x[:, int(np.searchsorted(keep, start)), :]
        bad = np.flatnonzero(~done)
        if len(bad):
            out[bad, s] = _sparse_start(n, qr, qc, qd[bad], rhs[bad], removed[s:s + 1],
                                        start)[:, 0]
    return out


#: Most memory :class:`MeanPreconditioner` keeps for its per-scenario inverses (beyond it, each
#: is made again when asked for).
PRECOND_CACHE_BYTES = 512 * 2**20


class MeanPreconditioner:
    """The preconditioners of the iteration of :func:`_iterative_start`, one per removal
    scenario: the inverse of ``I - Q`` at a mean transient block ``qmean`` (values at the
    entries ``(qr, qc)``) restricted to the scenario's kept states, in float32, and the
    starting point of every draw (the solution for the mean right-hand sides ``rhs_mean``,
    shape (n, m)).

    One inverse of the full mean matrix gives every scenario's by the Schur complement. Made
    once for all the batches of posterior draws of one attribution (from the posterior mean),
    and kept while they fit in :data:`PRECOND_CACHE_BYTES`: made again per batch, they cost
    as much as the iteration itself at order 3 (1,111 states, 11 scenarios)."""

    def __init__(self, n, qr, qc, qmean, rhs_mean, removed):
        from scipy.linalg import inv  # LU + getri: 4x faster than numpy's solve against I

        A = np.eye(n, dtype=np.float32)
        A[qr, qc] -= qmean
        self.B = inv(A, overwrite_a=True, check_finite=False)  # float32: it only steers
        self.removed, self.rhs_mean = removed, rhs_mean.astype(np.float32)
        kept = int((~removed).sum()) if removed.size else 0
        self._cache = {} if 4 * (kept * n) <= PRECOND_CACHE_BYTES else None

    def scenario(self, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kept states of scenario ``s``, the inverse of ``I - Q`` on them (k, k) and the
        starting values (k, m)."""
        if self._cache is not None and s in self._cache:
            return self._cache[s]
        B = self.B
        keep = np.flatnonzero(~self.removed[s])
        drop = np.flatnonzero(self.removed[s])
        minv = B[np.ix_(keep, keep)]
        if len(drop):
            minv = minv - B[np.ix_(keep, drop)] @ np.linalg.solve(B[np.ix_(drop, drop)],
                                                                  B[np.ix_(drop, keep)])
        x0 = (minv @ self.rhs_mean[keep]).astype(np.float64)
        if self._cache is not None:
            self._cache[s] = keep, minv, x0
        return keep, minv, x0


def interleaved_blocks(n, qr, qc, qd) -> sp.csr_matrix:
    """The transient blocks ``Q_d`` of all D draws as one sparse (n * D, n * D) matrix whose
    row and column ``r * D + d`` belong to state ``r`` of draw ``d`` (entries ``(qr, qc)``,
    sorted by row; values ``qd`` of shape (D, nnz)). With values laid out (state, draw), one
    matvec applies every draw's matrix, and the same layout serves the dense products.

    Built draw by draw (the values as they are, no gather), then its rows permuted."""
    import scipy.sparse as sp

    D, nnz = qd.shape
    per_row = np.bincount(qr, minlength=n)
    indptr = np.zeros(D * n + 1, np.int64)
    np.cumsum(np.tile(per_row, D), out=indptr[1:])
    cols = qc[None, :] * D + np.arange(D)[:, None]  # (D, nnz), column in (state, draw) order
    by_draw = sp.csr_matrix((qd.ravel(), cols.ravel(), indptr), shape=(D * n, n * D))
    return by_draw[(np.arange(n)[:, None] + np.arange(D)[None, :] * n).ravel()]


def _precond_iterate(Q, b, keep, minv, x0=None):
    """The iteration of :func:`_iterative_start` on the kept states ``keep``.

    ``Q`` comes from :func:`interleaved_blocks`, ``b`` is (n, D, m), ``minv`` (k, k). Values of
    removed states stay 0, so ``Q`` applies as it is (transitions into removed states drop out).
    Draws leave the iteration as soon as they converge (most need about ten steps, a few many
    more), so later steps cost only what the remaining draws need. All draws start from
    ``x0`` (k, m), by default the solution for the draws' mean right-hand side. Returns the
    values (D, k, m) and whether each draw converged (D,)."""
    n, D, m = b.shape
    k = len(keep)
    bk = b[keep]  # (k, D, m)
    if x0 is None:
        x0 = (minv @ bk.mean(axis=1).astype(np.float32)).astype(np.float64)
    xk = np.repeat(x0[:, None, :], D, axis=1)  # (k, D, m)
    x = np.zeros((n, D, m))
    x[keep] = xk
    done = np.zeros(D, bool)
    act = np.arange(D)  # draws still iterating
    rows = act  # draws whose rows Qa holds: re-sliced when at most half of them still iterate
    Qa = Q if k == n else Q[(keep[:, None] * D + act[None, :]).ravel()]
    for _ in range(_ITER_MAX):
        A = len(act)
        xa = xk if A == D else xk[:, act]
        resid = (Qa @ x.reshape(n * D, m)).reshape(k, len(rows), m)
        if len(rows) > A:
            resid = resid[:, np.searchsorted(rows, act)]
        resid += bk if A == D else bk[:, act]
        resid -= xa
        dx = (minv @ resid.astype(np.float32).reshape(k, A * m)).reshape(k, A, m)
        xa += dx
        if A == D:
            x[keep] = xk
        else:
            xk[:, act] = xa
            x[np.ix_(keep, act)] = xa
        scale = np.abs(xa).max(axis=(0, 2))
        step = np.abs(dx).max(axis=(0, 2))
        conv = step <= _ITER_TOL * np.maximum(scale, 1e-300)
        if conv.any():
            done[act[conv]] = True
            act = act[~conv]
            if len(act) == 0:
                break
            if 2 * len(act) <= len(rows):
                rows = act
                Qa = Q[(keep[:, None] * D + act[None, :]).ravel()]
    done &= np.isfinite(xk).all(axis=(0, 2))
    return xk.transpose(1, 0, 2), done


def adjoint_vectors(conc: sp.csr_matrix, n: int, mean: np.ndarray, conv_col: int,
                    removed: np.ndarray, start: int = 0, inverse: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Expected visits from ``start`` and conversion probabilities of every state, in every
    removal scenario, at the transition probabilities ``mean`` (``conc``'s layout).

    ``P(conversion from start) = e_start^T (I - Q)^-1 r`` (``r`` the conversion column), so
    its derivative in the entry ``P_ij`` is ``u_i v_j`` with ``u = (I - Q)^-T e_start`` (the
    expected visits) and ``v = (I - Q)^-1 r`` (the conversion probability from each state; 1
    for the conversion state itself, 0 for the other outcomes): one solve and one transposed
    solve per scenario. In a scenario transitions into removed states go to drop-off, so
    removed states get ``u = v = 0``.

    Parameters
    ----------
    conc : csr_matrix, shape (n, n + n_abs)
        Gives the sparsity pattern.
    mean : ndarray, shape (nnz,)
        Transition probabilities in ``conc``'s layout.
    conv_col : int
        Column of the conversion state.
    removed : ndarray of bool, shape (n_sets, n)
    inverse : ndarray, shape (n, n), optional
        ``(I - Q)^-1`` at ``mean`` (:func:`mean_inverse`) for mid-sized chains, when the
        point estimate has made it.

    Returns
    -------
    u, v : ndarray, shape (n_sets, n) each
    """
    rows = np.repeat(np.arange(n), np.diff(conc.indptr))
    cols = conc.indices
    if _DENSE_MAX < n <= _DENSE_SOLVE_MAX:  # small chains: each scenario solved below
        return _dense_adjoint(n, rows, cols, mean, conv_col, removed, start, inverse)
    import scipy.sparse as sp

    q = cols < n
    Q = sp.csr_matrix((mean[q], (rows[q], cols[q])), shape=(n, n))
    r = np.bincount(rows[cols == conv_col], weights=mean[cols == conv_col], minlength=n)
    S = removed.shape[0]
    u, v = np.zeros((S, n)), np.zeros((S, n))
    A = sp.identity(n, format="csr") - Q
    dense = A.toarray() if n <= _DENSE_MAX else None
    for s in range(S):  # loop over scenarios only; each solve is vectorised
        if removed[s, start]:
            continue
        keep = np.flatnonzero(~removed[s])
        e = (keep == start).astype(np.float64)
        if dense is not None:
            Ak = dense[np.ix_(keep, keep)]
            v[s, keep] = np.linalg.solve(Ak, r[keep])
            u[s, keep] = np.linalg.solve(Ak.T, e)
        else:
            v[s, keep], u[s, keep] = _sparse_pair(A[keep][:, keep], r[keep], e, n)
    return u, v


def _dense_adjoint(n, rows, cols, mean, conv_col, removed, start, inverse=None):
    """:func:`adjoint_vectors` from one dense inverse ``B = (I - Q)^-1`` (``inverse`` when
    given; one thread): a scenario keeping states ``K`` and removing ``R`` has
    ``(A_KK)^-1 = B_KK - B_KR B_RR^-1 B_RK``, so with ``r_s`` the conversion column with its
    removed states' entries set to 0 and ``x_s = B r_s``, ``v_K = x_s[K] - (B z_s)[K]`` where
    ``z_s = B_RR^-1 x_s[R]`` (0 outside ``R``), and ``u_K = B[start, K] - (w_s B)[K]`` where
    ``w_s = B_RR^-T B[start, R]``: per scenario two solves of the removed states' size, and the
    products with ``B`` of all scenarios at once (three matrix products instead of gathering
    ``B_KK`` per scenario: order 3, 0.1 s -> 0.03 s)."""
    conv = cols == conv_col
    r = np.bincount(rows[conv], weights=mean[conv], minlength=n)
    S = removed.shape[0]
    u, v = np.zeros((S, n)), np.zeros((S, n))
    live = np.flatnonzero(~removed[:, start])  # scenarios keeping the start (else 0)
    if len(live) == 0:
        return u, v
    with one_blas_thread():
        if inverse is None:
            q = cols < n
            inverse = _inverses(n, rows[q] * n + cols[q], mean[None, q])[0]
        B = inverse
        kept = ~removed[live]  # (L, n)
        X = B @ (r[:, None] * kept.T)  # (n, L): x_s
        Z = np.zeros((n, len(live)))
        W = np.zeros((len(live), n))
        for i, s in enumerate(live):  # loop over scenarios only; each step is vectorised
            R = np.flatnonzero(removed[s])
            if len(R):
                Brr = B[np.ix_(R, R)]
                Z[R, i] = np.linalg.solve(Brr, X[R, i])
                W[i, R] = np.linalg.solve(Brr.T, B[start, R])
        v[live] = np.where(kept, (X - B @ Z).T, 0.0)
        u[live] = np.where(kept, B[start] - W @ B, 0.0)
    return u, v


def _sparse_pair(Ak: sp.csr_matrix, b: np.ndarray, e: np.ndarray, n: int):
    """``Ak^-1 b`` and ``Ak^-T e``: sparse LU up to ``_PRECOND_MAX`` states (one factorisation
    for both), BiCGSTAB above (see :func:`_krylov_start`; a solve that does not reach
    ``_KRYLOV_TOL`` is done by LU)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    if n <= _PRECOND_MAX:
        lu = spla.splu(sp.csc_matrix(Ak))
        return lu.solve(b), lu.solve(e, trans="T")
    out = []
    for M, rhs in ((Ak, b), (sp.csr_matrix(Ak.T), e)):
        # started from the rhs: from 0, the unit rhs of the transposed system breaks BiCGSTAB
        # down at its first step (measured, order 4), and the LU fallback is very slow there
        x, info = spla.bicgstab(M, rhs, x0=rhs.copy(), rtol=_KRYLOV_TOL / 10, atol=0.0,
                                maxiter=5000)
        res = np.abs(M @ x - rhs).max()
        if info != 0 or not res <= _KRYLOV_TOL * max(np.abs(rhs).max(), 1e-300):
            x = spla.splu(sp.csc_matrix(M)).solve(rhs)
        out.append(x)
    return out[0], out[1]
