"""The chain's numpy CSR (models.markov.chain.Csr) against scipy.sparse: the same entries, the
same bits, and the same chain as building it with scipy (issue 20: fit markov without scipy)."""

import numpy as np
import pytest
import scipy.sparse as sp

from journeymodel.models.markov.chain import Chain, Csr, build_chain, fundamental_solve
from journeymodel.stats.transitions import TransitionCounts


def _random_entries(rng, shape, n, zeros=True):
    """Entries in random order, some of them twice (scipy adds three or more duplicates in an
    unspecified order; the fit's counts have none)."""
    lin = rng.choice(shape[0] * shape[1], min(n, shape[0] * shape[1]), replace=False)
    lin = rng.permutation(np.concatenate([lin, lin[: len(lin) // 3]]))
    r, c = lin // shape[1], lin % shape[1]
    n = len(lin)
    v = rng.gamma(0.5, 3.0, n)
    if zeros:
        v[rng.random(n) < 0.2] = 0.0
    return r, c, v


def _same(ours: Csr, theirs) -> None:
    theirs = sp.csr_matrix(theirs)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    assert ours.data.tobytes() == theirs.data.astype(np.float64).tobytes()


@pytest.mark.parametrize("seed", range(6))
def test_from_entries_row_sums_and_plus_match_scipy(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 40)), int(rng.integers(1, 50)))
    r, c, v = _random_entries(rng, shape, 300)
    ours, theirs = Csr.from_entries(r, c, v, shape), sp.csr_matrix((v, (r, c)), shape=shape)
    _same(ours, theirs)  # duplicates summed, explicit zeros kept
    np.testing.assert_array_equal(ours.row_sums(), np.asarray(theirs.sum(axis=1)).ravel())
    r2, c2, v2 = _random_entries(rng, shape, 200)
    v2[: len(v2) // 4] *= -1.0  # some sums cancel to zero: scipy leaves those out
    other = sp.csr_matrix((v2, (r2, c2)), shape=shape)
    _same(ours.plus(Csr.of(other)), theirs + other)
    np.testing.assert_array_equal(ours.columns(2, shape[1]) if shape[1] > 2 else 0,
                                  theirs[:, 2:].toarray() if shape[1] > 2 else 0)
    _same(Csr.of(ours.to_scipy()), theirs)


def test_from_entries_empty():
    m = Csr.from_entries(np.zeros(0), np.zeros(0), np.zeros(0), (3, 4))
    assert m.nnz == 0 and m.indptr.tolist() == [0, 0, 0, 0]
    assert m.row_sums().tolist() == [0.0, 0.0, 0.0]


def _counts(rng, n_tp=4, order=1, rows=60):
    """Random transition counts of order 1 (windows = touchpoint codes 1..n_tp)."""
    frm = rng.integers(0, n_tp + 1, rows)
    to = rng.integers(-3, n_tp + 1, rows)
    to[to == 0] = -1
    lin = np.unique(frm * 100 + to + 3)
    frm, to = lin // 100, lin % 100 - 3
    count = rng.integers(1, 9, len(frm)).astype(float)
    z = np.zeros(0)
    return TransitionCounts(order, True, tuple(f"t{i}" for i in range(n_tp)), frm, to, count,
                            np.zeros(len(frm)), z.astype(np.int64), z, z)


@pytest.mark.parametrize("prior", [0.0, 0.5])
@pytest.mark.parametrize("seed", range(5))
def test_chain_and_solve_match_the_scipy_matrices(seed, prior):
    """P and the fundamental solve from the numpy arrays equal scipy's, bit for bit."""
    rng = np.random.default_rng(seed)
    chain, _ = build_chain(_counts(rng), prior)
    conc = chain.conc  # scipy, made on demand
    rows = np.asarray(conc.sum(axis=1)).ravel()
    row_of = np.repeat(np.arange(chain.n), np.diff(conc.indptr))
    assert chain.p_data.tobytes() == (conc.data / rows[row_of]).tobytes()
    n = chain.n
    rhs = np.column_stack([chain.P[:, n:].toarray(), np.ones(n)])
    expect = np.linalg.solve(np.eye(n) - chain.P[:, :n].toarray(), rhs)
    ours = Csr(chain.p_data, chain.csr.indices, chain.csr.indptr, chain.csr.shape)
    assert fundamental_solve(ours, n, rhs).tobytes() == expect.tobytes()
    assert fundamental_solve(chain.P, n, rhs).tobytes() == expect.tobytes()
    again = Chain(chain.keys, chain.absorbing, chain.conc)  # a scipy matrix is kept as Csr
    assert isinstance(again.csr, Csr)
    assert again.p_data.tobytes() == chain.p_data.tobytes()


def test_closed_loop_gets_a_way_out():
    """Two states that only lead to each other reach no outcome: each gets concentration 1 on
    every absorbing state (hand-made counts)."""
    z = np.zeros(0)
    counts = TransitionCounts(1, True, ("a", "b", "c"), np.array([0, 1, 2, 3, 3]),
                              np.array([1, -1, 3, 2, 2 + 0]), np.array([4., 4., 1., 1., 0.]),
                              np.zeros(5), z.astype(np.int64), z, z)
    chain, notes = build_chain(counts)
    dense = chain.conc.toarray()
    assert dense[2, 4:].tolist() == [1.0, 1.0] and dense[3, 4:].tolist() == [1.0, 1.0]
    assert any("never led to an outcome" in note for note in notes)


def test_draw_rows_of_a_numpy_csr_equal_the_scipy_matrix_even_where_variates_underflow():
    """Rows of tiny concentrations (all gamma variates of a row can underflow to 0: those take
    the posterior mean) are drawn from the numpy CSR as from scipy's matrix, bit for bit."""
    from journeymodel.models.markov.chain import draw_rows

    rng = np.random.default_rng(3)
    r, c, v = _random_entries(rng, (30, 34), 200, zeros=False)
    v[r < 10] = 1e-4  # a third of the rows: variates of shape 1e-4 underflow almost always
    ours = Csr.from_entries(r, c, v, (30, 34))
    a = draw_rows(ours, 50, np.random.default_rng(7))
    b = draw_rows(ours.to_scipy(), 50, np.random.default_rng(7))
    assert a.tobytes() == b.tobytes()
    assert np.isfinite(a).all()
    np.testing.assert_allclose(ours.row_sums(a[0]), np.where(np.diff(ours.indptr) > 0, 1.0, 0.0))


def test_table_prints_and_converts_like_the_dataframe():
    """io.table.Table, with and without row labels: records, index dict and DataFrame as
    pandas gives them; `print_frame` prints it as it prints that DataFrame."""
    import io

    import journeymodel.cli.output as output
    import pandas as pd
    from rich.console import Console

    from journeymodel.io.table import Table

    cols = {"state": ["a", "b", "c"], "visits": [3.0, 1.0, 2.0], "n": [1, 2, 3]}
    for index, name in ((None, None), (["x", "y", "z"], "step")):
        table = Table(cols, index=index, index_name=name)
        frame = pd.DataFrame(cols, index=None if index is None else pd.Index(index, name=name))
        pd.testing.assert_frame_equal(table.to_pandas(), frame)
        assert table.to_records() == frame.to_dict(orient="records")
        assert table.to_index_dict() == frame.to_dict(orient="index")
        assert list(table.itertuples(index=False)) == list(frame.itertuples(index=False))
        printed = []
        for obj in (table, frame):
            buf = io.StringIO()
            console = Console(file=buf, highlight=False, soft_wrap=True, width=60)
            saved, output.console = output.console, lambda c=console: c
            try:
                output.print_frame("T", obj, max_rows=2, kinds={"visits": "count"})
            finally:
                output.console = saved
            printed.append(buf.getvalue())
        assert printed[0] == printed[1] and "more rows" in printed[0]
