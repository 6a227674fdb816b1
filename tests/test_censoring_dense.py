"""The censored EM's dense step (issue 20): the expected counts of the censored journeys, and
the number of steps, are the same bits whether the EM map runs on the flat entries or on the
dense (pair rank, cell rank, state) block, at orders 1-3, with repeats merged or kept,
accelerated or plain."""

from __future__ import annotations

import known_process as kp
import numpy as np
import pytest

from journeymodel.models.markov import censoring
from journeymodel.models.markov.censoring import censored_allocation
from journeymodel.models.markov.model import MarkovJourneyModel
from journeymodel.stats.transitions import censored_states


def allocate(monkeypatch, js, order, repeats, accelerate, dense):
    """Expected counts and steps of the censored EM, dense block forced on or off."""
    m = MarkovJourneyModel(order=order, collapse_repeats=not repeats).fit(js)
    cens = censored_states(js, order, collapse=m.collapse_repeats)
    monkeypatch.setattr(censoring, "_DENSE_MIN", 0 if dense else 10**18)
    monkeypatch.setattr(censoring, "_DENSE_PAD", np.inf)
    made = []
    real = censoring._dense_step
    monkeypatch.setattr(censoring, "_dense_step",
                        lambda *args: made.append(real(*args)) or made[-1])
    steps = []
    out = censored_allocation(m.counts_, cens, m.holding_, accelerate=accelerate, steps=steps)
    assert [step is not None for step in made] == [dense]
    return out, steps


@pytest.mark.parametrize("order, repeats, accelerate",
                         [(1, False, True), (1, True, True), (2, False, True), (3, True, True),
                          (2, True, False)])
def test_dense_step_gives_the_flat_steps_bits(monkeypatch, order, repeats, accelerate):
    f = kp.simulate(6000, 4, span=60.0, p=kp.P_REPEATS if repeats else kp.P)
    js = kp.journeys(kp.cut(f, kp.cut_for_share(f, 0.4, span=60.0)))
    flat, flat_steps = allocate(monkeypatch, js, order, repeats, accelerate, dense=False)
    dense, dense_steps = allocate(monkeypatch, js, order, repeats, accelerate, dense=True)
    assert flat.count.sum() > 100  # censored journeys were allocated
    assert dense_steps == flat_steps
    for name in ("from_key", "to_key", "count"):
        assert np.array_equal(getattr(dense, name), getattr(flat, name)), name


def test_dense_block_is_skipped_when_padding_would_dominate(monkeypatch):
    """A block more than _DENSE_PAD times the entries is not built (the flat step runs)."""
    made = []
    real = censoring._dense_step

    def spy(*args):
        step = real(*args)
        made.append(step is not None)
        return step

    f = kp.simulate(6000, 4, span=60.0, p=kp.P)
    js = kp.journeys(kp.cut(f, kp.cut_for_share(f, 0.4, span=60.0)))
    monkeypatch.setattr(censoring, "_dense_step", spy)
    monkeypatch.setattr(censoring, "_DENSE_MIN", 0)
    monkeypatch.setattr(censoring, "_DENSE_PAD", 1e-9)
    m = MarkovJourneyModel(order=2).fit(js)
    assert made == [False] and m.expected_counts_.count.sum() > 0


def test_state_blocks_cover_every_state_once_by_ranges_of_cell_counts():
    rng = np.random.default_rng(1)
    ncell = np.concatenate([rng.integers(1, 8, 3000), rng.integers(20, 40, 50)])
    npair = rng.integers(1, 14, len(ncell))
    blocks = censoring._state_blocks(ncell, npair)
    assert np.array_equal(np.sort(np.concatenate(blocks)), np.arange(len(ncell)))
    ranges = [(ncell[b].min(), ncell[b].max()) for b in blocks]
    # disjoint, in order
    assert all(hi < lo for (_, hi), (lo, _) in zip(ranges[:-1], ranges[1:], strict=True))
    volume = sum(ncell[b].max() * npair[b].max() * len(b) for b in blocks)
    assert len(blocks) > 1 and volume < ncell.max() * npair.max() * len(ncell) / 2
