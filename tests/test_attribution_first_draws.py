"""The first posterior draws of a process (issue 20): rows normalised stream by stream, and
the dense inverses read from the draws without a copy of the transient values. The same bits
as the whole-array computations they replace."""

from __future__ import annotations

import numpy as np
import pytest

from journeymodel.models.markov import chain as mc
from journeymodel.models.markov.chain import Csr, draw_rows, draw_streams


def whole_array_rows(conc: Csr, n_draws: int, streams) -> np.ndarray:
    """draw_rows before issue 20's change: all the variates first, then one normalisation of
    the whole array (the rows' sums by np.add.reduceat, the mean where a row underflowed)."""
    g = np.empty((n_draws, conc.nnz))
    for i, gen in enumerate(streams.generators):
        part = g[i * streams.draws:(i + 1) * streams.draws]
        gen.standard_gamma(np.broadcast_to(conc.data, part.shape), out=part)
    counts = np.diff(conc.indptr)
    nonempty = counts > 0
    sums = np.zeros((n_draws, conc.shape[0]))
    sums[:, nonempty] = np.add.reduceat(g, conc.indptr[:-1][nonempty], axis=1)
    row_of = conc.rows()
    s = sums[:, row_of]
    out = np.divide(g, s, out=g, where=s > 0)
    mean = conc.data / conc.row_sums()[row_of]
    zero = s <= 0
    out[zero] = np.broadcast_to(mean, out.shape)[zero]
    return out


def test_draw_rows_is_the_whole_array_normalisation():
    """Rows of 1 to 40 entries (reduceat's 8-way unrolled sums from 8 on)."""
    rng = np.random.default_rng(1)
    sizes = np.array([1, 3, 8, 9, 12, 40])
    rows = np.repeat(np.arange(len(sizes)), sizes)
    cols = np.concatenate([rng.choice(60, k, replace=False) for k in sizes])
    conc = Csr.from_entries(rows, cols, rng.gamma(1.0, 20.0, len(rows)) + 0.01, (6, 60))
    streams = draw_streams(3, 1000, 64)
    got = draw_rows(conc, 1000, streams)
    assert got.flags.c_contiguous
    want = whole_array_rows(conc, 1000, draw_streams(3, 1000, 64))
    np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))


def test_draw_rows_with_an_empty_row_and_underflowing_rows():
    """An empty row (no entries) and a row of tiny concentrations whose variates all
    underflow to 0 in some draws: those draws take the row's mean, as before."""
    conc = Csr.from_entries(np.array([0, 0, 2, 2, 3]), np.array([1, 2, 0, 3, 1]),
                            np.array([2.0, 3.0, 1e-4, 3e-4, 1.0]), (4, 5))
    got = draw_rows(conc, 300, draw_streams(5, 300, 32))
    want = whole_array_rows(conc, 300, draw_streams(5, 300, 32))
    np.testing.assert_array_equal(got, want)
    underflowed = np.all(got[:, 2:4] == conc.data[2:4] / conc.data[2:4].sum(), axis=1)
    assert underflowed.any()  # the mean was used somewhere
    np.testing.assert_allclose(got.sum(axis=1), 3.0)  # rows 0, 2 and 3 each sum to 1


@pytest.mark.parametrize("n, density", [(6, 1.0), (6, 0.7), (20, 0.2)])
def test_inverses_from_the_draws_are_those_of_the_copied_values(n, density):
    """_inverses reading the transient values from every entry's (``at``) gives the bits of
    the inverses of the values copied out first (the dense gather and the sparse scatter)."""
    rng = np.random.default_rng(n)
    lin = np.flatnonzero(rng.random(n * n) < density)
    extra = 7  # entries that are not transient (absorbing columns), between the transient ones
    at = np.sort(rng.choice(len(lin) + extra, len(lin), replace=False))
    data = rng.random((50, len(lin) + extra)) / n
    got = mc._inverses(n, lin, data, at)
    want = mc._inverses(n, lin, np.ascontiguousarray(data[:, at]))
    np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))
    np.testing.assert_allclose(got[0] @ (np.eye(n) - _dense(n, lin, data[0, at])), np.eye(n),
                               atol=1e-9)


def _dense(n, lin, values):
    q = np.zeros(n * n)
    q[lin] = values
    return q.reshape(n, n)
