"""Draws at given uniforms, and sums in a fixed order: the building blocks of the simulation
of journeys in flight (:mod:`journeymodel.analysis.inflight`), whose bits for one journey must
not depend on the other journeys simulated with it (issue 15).

A categorical draw takes its uniform from the caller (counter-based chance,
:mod:`journeymodel.analysis.chance`); a sum over a journey's options runs in a fixed order,
element by element (:func:`products`, :func:`stage_totals`: compiled loops, not BLAS products,
whose rounding may depend on the sizes of the matrices; :func:`segment_cumsum`: running sums
that restart at every journey). The draws option by option (:func:`categorical_columns`,
:func:`categorical_rows`) loop over the few options, each step vectorised over the items: no
(items, options) temporaries, no sums along a short axis, 2-4x faster than
:func:`categorical` on stacked arrays, and the same draws.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["categorical", "categorical_columns", "categorical_rows", "columns", "count_below",
           "cumulative", "first_above", "products", "runs", "segment_cumsum",
           "stage_totals"]


def categorical(cum: np.ndarray, r: np.ndarray) -> np.ndarray:
    """One draw per row of row-wise cumulative probabilities ``cum`` (n, K) at uniforms
    ``r``."""
    u = r * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), cum.shape[1] - 1)


def cumulative(columns: list[np.ndarray]) -> list[np.ndarray]:
    """Running sums of the options' weights, one array per option: the values of
    ``np.cumsum`` along the options (a sequential sum, the same floats)."""
    out = list(columns[:1])
    for col in columns[1:]:  # loop over options
        out.append(out[-1] + col)
    return out


def count_below(u: np.ndarray, cum: list[np.ndarray]) -> np.ndarray:
    """The option of each ``u``: how many running sums are at or below it, at most K - 1
    (``categorical``'s rule)."""
    count = np.zeros(len(u), np.int64)
    for c in cum:  # loop over options
        count += u >= c
    return np.minimum(count, len(cum) - 1)


def categorical_columns(columns: list[np.ndarray], r: np.ndarray) -> np.ndarray:
    """``categorical(np.cumsum(weights, axis=1), r)`` from the weights' columns."""
    cum = cumulative(columns)
    return count_below(r * cum[-1], cum)


def products(w: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``w @ s.T`` for ``w`` (a, m) and ``s`` (b, m), each entry summed over ``m`` in order
    (``0 + w0 s0 + w1 s1 + ...``, each product and sum rounded): its bits do not depend on
    ``a`` or ``b``, as a matrix product's may (BLAS kernels differ by size). Compiled (numba,
    no fast-math: no reordering, no fused multiply-add; vectorised across ``b``): the sums a
    numpy loop over the options gives, several times faster (that loop took half of a stages
    forecast)."""
    out = np.empty((w.shape[0], s.shape[0]))
    _products_kernel(np.ascontiguousarray(w, np.float64),
                     np.ascontiguousarray(np.asarray(s, np.float64).T), out)
    return out


@numba.njit(cache=True, nogil=True)
def _products_kernel(w, st, out):  # pragma: no cover - compiled
    for a in range(w.shape[0]):
        row = out[a]
        row[:] = 0.0
        for k in range(w.shape[1]):
            wk = w[a, k]
            col = st[k]
            for b in range(len(row)):
                row[b] += wk * col[b]


def first_above(values: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 x: np.ndarray) -> np.ndarray:
    """Per item, the first index ``i`` in ``[lo, hi)`` with ``values[i] > x`` (``hi - 1`` when
    none), ``values`` increasing within every range: a binary search of all items at once
    (a loop over halvings, not over items)."""
    left, right = lo.copy(), hi.copy()
    act = np.flatnonzero(left < right)
    while len(act):
        mid = (left[act] + right[act]) // 2
        above = values[mid] > x[act]
        right[act] = np.where(above, mid, right[act])
        left[act] = np.where(above, left[act], mid + 1)
        act = act[left[act] < right[act]]
    return np.minimum(left, hi - 1)


def columns(table: np.ndarray) -> np.ndarray:
    """The columns of a 2-d table, each contiguous (rows of the transpose)."""
    return np.ascontiguousarray(table.T)


def categorical_rows(cum: np.ndarray, row: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``categorical(cum[row], r)`` for a small table ``cum`` (rows, K) of cumulative
    probabilities, without gathering its rows."""
    cols = np.ascontiguousarray(cum.T)
    return count_below(r * cols[-1][row], [c[row] for c in cols])


def segment_cumsum(w: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Running sums of ``w`` within every segment ``ptr[i]:ptr[i + 1]``, each from its own
    start (the bits of ``np.cumsum`` of the segment alone, whatever comes before it): a loop
    over positions, each over the segments that long (longest first)."""
    out = np.array(w, np.float64, copy=True)
    lens = np.diff(ptr)
    order = np.argsort(-lens, kind="stable")
    by_len = lens[order]
    for p in range(1, int(lens.max()) if len(lens) else 0):  # loop over positions
        seg = order[:np.searchsorted(-by_len, -p, side="left")]
        i = ptr[seg] + p
        out[i] += out[i - 1]
    return out


@numba.njit(cache=True, nogil=True)
def stage_totals(q, st, post_t, exit3, per_stage, move, stay):  # pragma: no cover - compiled
    """The first move's weights of every journey-draw of a stages model, each summed in a
    fixed order (see the module docstring): ``per_stage[d, k, j] = sum_m q[d, k, m] S[j, m]``
    (stage ``k`` moves), ``move[d, j] = sum_k post[j, k] per_stage[d, k, j]`` and ``stay[d, j]
    = sum_k post[j, k] exit3[d, k]`` (a drop-off). ``st``, ``post_t``: transposed, so the
    inner loops run along the journeys (vectorised). One pass, in place of BLAS products whose
    rounding may depend on the number of journeys."""
    n_draws, n_stages, n_moves = q.shape
    for d in range(n_draws):
        mv, sy = move[d], stay[d]
        mv[:] = 0.0
        sy[:] = 0.0
        for k in range(n_stages):
            row = per_stage[d, k]
            row[:] = 0.0
            for m in range(n_moves):
                qm = q[d, k, m]
                col = st[m]
                for j in range(len(row)):
                    row[j] += qm * col[j]
            pk = post_t[k]
            e = exit3[d, k]
            for j in range(len(row)):
                mv[j] += row[j] * pk[j]
                sy[j] += e * pk[j]


def runs(keys: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of every run of equal values in ``keys``."""
    if len(keys) == 0:
        return []
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(keys)) + 1, [len(keys)]])
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True))
