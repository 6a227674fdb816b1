"""The dense censored EM's sums over a block's pairs and cells (issue 20): numpy's reduction,
where it is used, gives the bits of the terms added one after the other, in order (what the
flat step's ``bincount`` gives), whatever the block's shape, a single state or pair included."""

from __future__ import annotations

import numpy as np
import pytest

from journeymodel.models.markov.censoring import _ordered_sum


def in_order(a: np.ndarray, axis: int) -> np.ndarray:
    terms = np.moveaxis(a, axis, 0)
    total = terms[0].copy()
    for term in terms[1:]:
        total += term
    return total


@pytest.mark.parametrize("shape", [(13, 24, 997), (13, 34, 113), (40, 9, 2), (1, 1, 1),
                                   (30, 30, 1), (1, 30, 5), (30, 1, 5), (17, 3, 64)])
@pytest.mark.parametrize("axis", [0, 1])
def test_ordered_sum_is_the_terms_added_in_order(shape, axis):
    rng = np.random.default_rng(sum(shape) + axis)
    # values of many magnitudes, zeros among them: another order of the sum gives other bits
    a = rng.random(shape) * 10.0 ** rng.integers(-12, 12, shape)
    a[rng.random(shape) < 0.2] = 0.0
    got = _ordered_sum(a, axis)
    assert got.shape == in_order(a, axis).shape
    assert np.array_equal(got.view(np.int64), in_order(a, axis).view(np.int64))


def test_pairwise_summation_would_differ():
    """The check above can fail: summing 64 such terms pairwise gives other bits."""
    rng = np.random.default_rng(0)
    a = rng.random((64, 1, 1)) * 10.0 ** rng.integers(-12, 12, (64, 1, 1))
    assert not np.array_equal(np.add.reduce(a.ravel()), in_order(a, 0).ravel()[0])
