"""The removal scenarios' solves of a mid-sized chain (order 3: hundreds of states, between the
dense and the iterative paths of models/markov/chain.py) against an independent reference:
each scenario's reduced system ``(I - Q_KK) x = r_K`` solved densely, state by state."""

from __future__ import annotations

import numpy as np
import pytest
from test_linear_intervals import dense_reference

from journeymodel.data.datasets import make_demo_data
from journeymodel.data.journeys import load_journeys
from journeymodel.models.markov.attribution import channel_masks
from journeymodel.models.markov.chain import adjoint_vectors, start_values
from journeymodel.models.markov.model import MarkovJourneyModel


@pytest.fixture(scope="module")
def order3():
    model = MarkovJourneyModel(order=3).fit(load_journeys(make_demo_data(600, seed=2).events))
    assert model.chain_.n > 250  # above the small chains' dense path
    return model


def reference(model):
    """Per scenario (nothing removed, then each channel): conversion probability of every
    kept state (``v``) and expected visits from the start (``u``), by dense solves
    (test_linear_intervals.dense_reference)."""
    chain = model.chain_
    conv = chain.n + chain.absorbing.index("conversion")
    removed = np.vstack([np.zeros((1, chain.n), bool),
                         channel_masks(model.state_codes_, len(model.journeys_.touchpoints))])
    _, u, v = dense_reference(chain, removed)
    return removed, conv, u, v


def test_point_estimate_of_every_scenario(order3):
    removed, conv, _, v = reference(order3)
    chain = order3.chain_
    got = start_values(chain.csr, chain.n, chain.p_data[None, :], np.array([conv]),
                       np.ones((1, chain.n)), removed)[0, :, 0]
    np.testing.assert_allclose(got, v[:, 0], rtol=1e-12)


def test_adjoint_vectors_of_every_scenario(order3):
    removed, conv, u, v = reference(order3)
    chain = order3.chain_
    got_u, got_v = adjoint_vectors(chain.csr, chain.n, chain.p_data, conv, removed)
    np.testing.assert_allclose(got_v, v, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(got_u, u, rtol=1e-11, atol=1e-12 * np.abs(u).max())
    assert (got_u[1:][removed[1:]] == 0).all() and (got_v[1:][removed[1:]] == 0).all()


def test_draws_of_rows_whose_gamma_variates_underflow():
    """Rows seen only in in-flight journeys, ignored, keep the prior alone (1e-4 per entry):
    their gamma variates underflow to 0 and take the posterior mean (the draws used to stop
    there: the fallback read scipy's ``sum`` of the chain's numpy CSR)."""
    journeys = load_journeys(make_demo_data(600, seed=2).events)
    model = MarkovJourneyModel(order=3, prior=1e-4, censored="ignore").fit(journeys)
    assert (model.chain_.csr.row_sums() < 1e-3).any()
    found = model.attribution("removal", n_draws=64, intervals="draws", seed=1)
    assert np.isfinite(found.conversions_low).all() and np.isfinite(found.conversions_high).all()
    assert (found.conversions_low <= found.conversions_high).all()
