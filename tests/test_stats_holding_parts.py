"""holding_stats' cells counted part by part (issue 20): the same cells and sums, bit for bit,
as the concatenated parts grouped at once, with unit and other weights, times that are not
finite, and a cell space too large to count densely."""

from __future__ import annotations

import numpy as np
import pytest

from journeymodel.stats import holding


def parts(rng, n_targets, unit):
    T = n_targets - 2
    out = []
    for k, n in ((None, 5000), (T, 700), (T + 1, 300)):
        dt = rng.lognormal(8, 3, n)
        dt[rng.random(n) < 0.05] = np.nan
        dt[rng.random(n) < 0.01] = np.inf
        dst = rng.integers(0, T, n) if k is None else np.full(n, k, np.int64)
        w = None if unit else rng.uniform(0.1, 3.0, n)
        out.append((rng.integers(0, T, n).astype(np.int16), dst, dt, w))
    return out


@pytest.mark.parametrize("n_targets", [12, 600])  # 600: beyond the dense cell space
@pytest.mark.parametrize("unit", [True, False])
def test_parts_group_as_the_concatenation(n_targets, unit):
    rng = np.random.default_rng(n_targets + unit)
    p = parts(rng, n_targets, unit)
    edges = holding.support_edges("datetime", None)
    n_bins = len(edges) - 1
    src = np.concatenate([x[0].astype(np.int64) for x in p])
    dst = np.concatenate([x[1] for x in p])
    dt = np.concatenate([x[2] for x in p])
    w = np.concatenate([np.ones(len(x[2])) if x[3] is None else x[3] for x in p])
    ok = np.isfinite(dt)
    want = holding._group(src[ok], dst[ok], holding.bin_of(dt[ok], edges), w[ok], n_targets,
                          n_bins)
    got = holding._group_parts(p, edges, n_targets, n_bins)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert got[3].sum() == pytest.approx(w[ok].sum())


