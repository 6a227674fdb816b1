"""Posterior draws of attribution intervals (issue 20): blocks of draws from random streams of
their own, sized by the chain (:func:`~journeymodel.models.markov.chain.stream_draws`), so a
draw's values depend on the seed and its index alone, whatever the batches and threads."""

from __future__ import annotations

import numpy as np
import pytest

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.models.markov import attribution as ma
from journeymodel.models.markov import chain as mc
from journeymodel.models.markov.chain import (
    STREAM_DRAWS,
    STREAM_VARIATES,
    Csr,
    draw_rows,
    draw_streams,
    stream_draws,
)
from journeymodel.models.markov.model import MarkovJourneyModel


@pytest.fixture(scope="module")
def order1():
    return MarkovJourneyModel().fit(load_journeys(make_demo_data(400, seed=4).events))


def small_csr() -> Csr:
    """Three rows of 2, 3 and 1 entries, one with a tiny concentration."""
    return Csr.from_entries(np.array([0, 0, 1, 1, 1, 2]), np.array([1, 3, 0, 2, 3, 3]),
                            np.array([5.0, 2.5, 1e-3, 40.0, 7.0, 3.0]), (3, 4))


@pytest.mark.parametrize("nnz, per", [(1, 2**16), (132, 256), (256, 256), (257, 128),
                                      (1_500, 32), (2_048, 32), (2_049, 16), (15_000, 16),
                                      (10**7, 16)])
def test_stream_draws_is_the_largest_power_of_two_within_the_variates(nnz, per):
    assert stream_draws(nnz) == per
    assert per >= STREAM_DRAWS and per & (per - 1) == 0
    assert per == STREAM_DRAWS or per * nnz <= STREAM_VARIATES < 2 * per * nnz


def test_draw_rows_from_streams_is_each_streams_dirichlet_draws():
    """Stream i gives draws i*per .. (i+1)*per - 1: its gamma variates, row by row, divided
    by their row's total (an independent reference: the generators spawned by hand)."""
    conc = small_csr()
    got = draw_rows(conc, 70, draw_streams(9, 70, 32))
    gens = np.random.default_rng(9).spawn(3)
    rows = conc.rows()
    parts = []
    for gen, count in zip(gens, (32, 32, 6), strict=True):
        g = gen.standard_gamma(np.broadcast_to(conc.data, (count, conc.nnz)))
        totals = np.stack([np.bincount(rows, weights=d, minlength=3) for d in g])
        parts.append(g / totals[:, rows])
    np.testing.assert_array_equal(got, np.concatenate(parts))


def test_a_draw_does_not_depend_on_how_many_are_drawn():
    conc = small_csr()
    many = draw_rows(conc, 100, draw_streams(2, 100, 32))
    few = draw_rows(conc, 45, draw_streams(2, 45, 32))
    np.testing.assert_array_equal(few, many[:45])
    # the streams of 16 draws before issue 20 (a list of generators) still work as they did
    old = draw_rows(conc, 40, list(np.random.default_rng(2).spawn(3)))
    np.testing.assert_array_equal(old[:16], many[:16])  # stream 0 starts the same
    assert not np.array_equal(old[16:32], many[16:32])


@pytest.mark.parametrize("variates", [STREAM_VARIATES, 2_000, 1])
def test_intervals_do_not_depend_on_batches_or_threads(order1, monkeypatch, variates):
    """Streams of 16 up to 256 draws (order 1: 11 states, about 130 transitions); one thread
    and one batch against three threads and batches of one stream: the same bits."""
    monkeypatch.setattr(mc, "STREAM_VARIATES", variates)
    monkeypatch.setattr(ma, "pool_threads", lambda: 1)
    one = order1.attribution(n_draws=1_000, seed=11, intervals="draws")
    monkeypatch.setattr(ma, "pool_threads", lambda: 3)
    monkeypatch.setattr(ma, "DRAW_BATCH_BYTES", 1)
    sizes = []
    real = ma.draw_rows
    monkeypatch.setattr(ma, "draw_rows", lambda c, n, rng: sizes.append(n) or real(c, n, rng))
    many = order1.attribution(n_draws=1_000, seed=11, intervals="draws")
    per = stream_draws(order1.chain_.csr.nnz)
    assert sorted(sizes) == sorted([per] * (1_000 // per) + [1_000 % per] * (1_000 % per > 0))
    for name in ("conversions_low", "conversions_high", "removal_effect_low",
                 "removal_effect_high"):
        np.testing.assert_array_equal(getattr(many, name), getattr(one, name))
    assert np.all(one.conversions_low < one.conversions) and np.all(
        one.conversions < one.conversions_high)


def test_default_batches_split_the_streams_among_the_threads(order1, monkeypatch):
    sizes = []
    real = ma.draw_rows
    monkeypatch.setattr(ma, "pool_threads", lambda: 2)
    monkeypatch.setattr(ma, "draw_rows", lambda c, n, rng: sizes.append(n) or real(c, n, rng))
    order1.attribution(n_draws=10_000, seed=0, intervals="draws")
    per = stream_draws(order1.chain_.csr.nnz)
    streams = -(-10_000 // per)
    half = (streams + 1) // 2 * per  # half of the streams, rounded up
    assert sorted(sizes) == [10_000 - half, half]


@pytest.mark.parametrize("m", [1, 2, 3])
def test_one_by_one_solves_are_numpys_solve(m):
    """The same bits as numpy's OpenBLAS solve (a division for one right-hand side, the
    reciprocal's product for several); within an ulp of any LAPACK's."""
    rng = np.random.default_rng(m)
    a = rng.uniform(0.05, 4.0, (500, 7, 1, 1))
    b = rng.uniform(-2.0, 2.0, (500, 7, 1, m))
    got, want = mc._one_by_one(a, b), np.linalg.solve(a, b)
    np.testing.assert_allclose(got, want, rtol=4.5e-16, atol=0)
    if "openblas" in str(np.show_config(mode="dicts")).lower():
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 1_000, 9_999])
@pytest.mark.parametrize("q", [[0.03, 0.97], [0.0, 1.0], [0.5], [0.1, 0.2, 0.9]])
def test_draw_quantiles_are_numpys_bit_for_bit(n, q):
    """np.quantile's default ("linear") quantiles, a column with a NaN giving NaN, without
    np.quantile's import of numpy.ma (issue 20)."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 5)) * rng.uniform(0.1, 100.0, 5)
    x[:, 4] = 1.0  # ties
    if n > 3:
        x[rng.integers(n), 2] = np.nan
    got = ma.draw_quantiles(x, q)
    np.testing.assert_array_equal(got, np.quantile(x, q, axis=0))
    assert got.shape == (len(q), 5) and (n <= 3 or np.isnan(got[:, 2]).all())
