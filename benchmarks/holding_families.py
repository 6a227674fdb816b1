"""Which holding-time distribution: held-out comparison of parametric families and the smoothed
empirical distribution (issue 17).

Journeys are split in two halves by customer (several seeds); each candidate is fitted on one
half's holding times and scored on the other's: the mean log-probability of a held-out holding
time's grid bin (the grid of journeymodel.stats.holding, the same bins for every candidate, so
the scores compare). Parametric families (exponential, gamma, Weibull, lognormal) are fitted
per (touchpoint, next event) pair by maximum likelihood on the binned counts, truncated at the
gap like the data, with the same back-off as the empirical one (a pair's pmf shrunk towards its
touchpoint's fit with 10 pseudo-observations, the touchpoint's towards the global fit; a pair or
touchpoint with fewer than 20 holding times uses its parent's fit). The
empirical candidates are journeymodel's fit_holding at several kernel bandwidths (in bins).

Two logs: the sample-data generator (journeymodel sample-data: the data users see first) and
the known process of tests/known_process.py (gamma holding times: a parametric family is the
truth there).

    .venv/bin/python benchmarks/holding_families.py [--customers 4000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import optimize, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import known_process as kp  # noqa: E402

from journeymodel.data.datasets import make_demo_data  # noqa: E402
from journeymodel.data.journeys import load_journeys  # noqa: E402
from journeymodel.stats.holding import (  # noqa: E402
    SHRINK,
    fit_holding,
    holding_stats,
    support_edges,
)

FAMILIES = {
    "exponential": (lambda th: stats.expon(scale=np.exp(th[0])), 1),
    "gamma": (lambda th: stats.gamma(np.exp(th[0]), scale=np.exp(th[1])), 2),
    "weibull": (lambda th: stats.weibull_min(np.exp(th[0]), scale=np.exp(th[1])), 2),
    "lognormal": (lambda th: stats.lognorm(np.exp(th[1]), scale=np.exp(th[0])), 2),
}
FLOOR = 1e-9  # probability floor per bin for every candidate (an empty bin is not -inf)


def binned_pmf(dist, edges: np.ndarray, ok: np.ndarray) -> np.ndarray:
    cdf = dist.cdf(edges)
    p = np.diff(cdf) * ok
    return p / max(p.sum(), 1e-300)


def fit_family(name: str, counts: np.ndarray, edges: np.ndarray, ok: np.ndarray):
    make, k = FAMILIES[name]
    mids = np.sqrt(np.maximum(edges[:-1], edges[1] / 2) * edges[1:])
    mean = np.log(max(np.average(mids, weights=counts + 1e-12), 1e-6))
    start = {"exponential": [mean], "gamma": [0.0, mean], "weibull": [0.0, mean],
             "lognormal": [mean, 0.0]}[name]

    def nll(th):
        p = binned_pmf(make(th), edges, ok)
        return -np.sum(counts * np.log(p + FLOOR))

    res = optimize.minimize(nll, start, method="Nelder-Mead",
                            options={"maxiter": 400, "xatol": 1e-4, "fatol": 1e-6})
    return binned_pmf(make(res.x), edges, ok)


def parametric_table(name, src, tables, T, edges, ok):
    """(pair pmfs) with the back-off of the empirical fit: pair -> touchpoint -> global."""
    glob = fit_family(name, tables.sum(axis=0), edges, ok)
    per_t = np.zeros((T, tables.shape[1]))
    np.add.at(per_t, src, tables)
    states = np.array([fit_family(name, per_t[a], edges, ok) if per_t[a].sum() >= 20 else glob
                       for a in range(T)])
    n_t = per_t.sum(axis=1)
    states = (n_t[:, None] * states + SHRINK * glob) / (n_t[:, None] + SHRINK)
    pairs = np.array([fit_family(name, tables[p], edges, ok) if tables[p].sum() >= 20
                      else states[src[p]] for p in range(len(src))])
    n = tables.sum(axis=1)
    return (n[:, None] * pairs + SHRINK * states[src]) / (n[:, None] + SHRINK)


def score(pmf_of_pair, test, ok) -> float:
    """Mean held-out log-probability per holding time."""
    src, dst, table = test.pair_table()
    p = pmf_of_pair(src, dst)
    p = (1 - FLOOR * ok.sum()) * p + FLOOR * ok
    return float(np.sum(table * np.log(np.where(table > 0, p, 1.0))) / table.sum())


def compare(train, test) -> dict[str, float]:
    edges = support_edges(train.time_kind, train.gap)
    ok = edges[1:] > edges[:-1]
    T = len(train.touchpoints)
    src, dst, tables = train.pair_table()
    width = T + 2
    key = src * width + dst
    out = {}
    for bw in (0.0, 0.5, 1.0, 2.0):
        h = fit_holding(train, bandwidth=bw)
        pmf = np.diff(h.cdf, axis=1)
        out[f"empirical, bandwidth {bw:g}"] = score(lambda s, d, pmf=pmf, h=h: pmf[h._rows(s, d)],
                                                      test, ok)
    for name in FAMILIES:
        table = parametric_table(name, src, tables, T, edges, ok)
        h = fit_holding(train)
        states = np.diff(h.cdf, axis=1)[1:1 + T]

        def lookup(s, d, table=table, states=states):
            pos = np.clip(np.searchsorted(key, s * width + d), 0, len(key) - 1)
            hit = key[pos] == s * width + d
            return np.where(hit[:, None], table[pos], states[s])

        out[name] = score(lookup, test, ok)
    return out


def halves(js, seed):
    rng = np.random.default_rng(seed)
    side = rng.random(len(js.customers)) < 0.5
    a = side[js.customer]
    return holding_stats(js.take(a)), holding_stats(js.take(~a))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=4000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    logs = {
        "sample data": lambda s: load_journeys(make_demo_data(args.customers, seed=s).events),
        "known process (gamma)": lambda s: kp.journeys(kp.cut(kp.simulate(args.customers, s),
                                                              400.0)),
    }
    for label, make in logs.items():
        rows = []
        for seed in range(args.seeds):
            js = make(seed)
            a, b = halves(js, seed)
            rows.append(compare(a, b))
            rows.append(compare(b, a))
        names = list(rows[0])
        mean = {n: np.mean([r[n] for r in rows]) for n in names}
        best = max(mean.values())
        n_obs = int(sum(holding_stats(make(s)).count.sum() for s in range(args.seeds)))
        print(f"\n{label}: {args.customers:,} customers x {args.seeds} seeds, "
              f"{n_obs:,} holding times; both halves scored (2 x {args.seeds} fits)")
        print(f"{'candidate':<28}{'held-out log-lik / obs':>24}{'vs best':>10}")
        for n in sorted(names, key=lambda n: -mean[n]):
            print(f"{n:<28}{mean[n]:>24.4f}{mean[n] - best:>10.4f}")


if __name__ == "__main__":
    main()
