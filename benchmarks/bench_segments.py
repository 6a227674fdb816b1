"""Behavioural segments (issue 18): recovery of a known mixture, against k-means, and speed.

Recovery: customers are drawn from a known mixture of K = 3 absorbing Markov chains
(:func:`journeymodel.data.mixtures.make_mixture_data`), as different as personas
(``separation=1``) down to alike (``separation`` 0.4), with 1 to 6 journeys per customer.
For each cell: the K chosen by BIC among 2..6 (``SegmentModel(n_segments="auto")``), the
adjusted Rand index (ARI) of its assignment and of the fit at the true K, the ARI of the true
mixture's own posterior (the best any method can do on that sample), and the naive baseline:
k-means (scikit-learn, k-means++, 10 starts, told the true K) on each customer's touchpoint
frequency vector (shares of its steps per touchpoint, with its conversion share). Then BIC's
choice at true K = 2, 4, 5.

Speed: ``SegmentModel(n_segments="auto", auto_range=(2, 6), restarts=3)`` on about 1M journeys
(300k customers), and seconds per EM iteration per K, against one EM iteration of a stages HMM
(``journeymodel.fit.hmm.em``) with as many states on the same distinct sequences.

Usage::

    .venv/bin/python benchmarks/bench_segments.py             # recovery + speed at 1M journeys
    .venv/bin/python benchmarks/bench_segments.py --quick     # recovery + speed at ~100k
    .venv/bin/python benchmarks/bench_segments.py --speed-only --customers 300000
    .venv/bin/python benchmarks/bench_segments.py --speed-only --kind hmm
    .venv/bin/python benchmarks/bench_segments.py --speed-only --kind hmm --customers 30000 \
        --no-table    # the HMM-segment fit only, at ~100k journeys
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from journeymodel.data.journeys import load_journeys
from journeymodel.data.mixtures import make_mixture_data
from journeymodel.fit import hmm
from journeymodel.models.segments import em
from journeymodel.models.segments.model import SegmentModel
from journeymodel.stats.segments import segment_stats
from journeymodel.stats.sequences import N_STATUS


def frequency_vectors(journeys) -> tuple[np.ndarray, np.ndarray]:
    """Customer ids (sorted) and each customer's share of steps per touchpoint plus its share
    of journeys converted (the k-means baseline's features)."""
    ids, cust = np.unique(journeys.customers[journeys.customer], return_inverse=True)
    n_t = len(journeys.touchpoints)
    steps = np.zeros((len(ids), n_t))
    np.add.at(steps, (np.repeat(cust, journeys.lengths), journeys.codes), 1.0)
    steps /= np.maximum(steps.sum(1, keepdims=True), 1.0)
    conv = np.bincount(cust, weights=(journeys.outcome == 0).astype(float),
                       minlength=len(ids)) / np.bincount(cust, minlength=len(ids))
    return ids, np.column_stack([steps, conv])


def oracle_ari(data, journeys) -> float:
    """ARI of the true mixture's posterior assignment (true parameters, true shares)."""
    stats = segment_stats(journeys)
    seqs = stats.sequences
    tr = data.truth
    n_x, K = len(seqs.symbols), tr.n_segments
    idx = [list(tr.touchpoints).index(t) for t in seqs.touchpoints]
    m = len(idx)
    theta = np.full((K, n_x + 1, n_x + 3), 1e-300)
    for k in range(K):
        ex = tr.exit[k][idx]
        theta[k, :m, :m] = tr.transition[k][np.ix_(idx, idx)] * ex[:, [0]]
        theta[k, :m, n_x:] = ex[:, 1:]
        theta[k, n_x, :m] = tr.start[k][idx]
        theta[k, m, n_x:] = 1.0 / 3
    comp = em.MarkovComponent(seqs.codes, seqs.offsets, n_x)
    resp, _ = em.membership(comp, theta, tr.shares, em.customer_bags(stats))
    truth = data.segments.set_index("customer_id").loc[stats.customers, "segment"]
    return adjusted_rand_score(truth, resp.argmax(1))


def recovery_cell(n: int, K: int, sep: float, jpc: float, seed: int, n_touchpoints: int = 6
                  ) -> dict:
    data = make_mixture_data(n, K, journeys_per_customer=jpc, separation=sep, seed=seed,
                             n_touchpoints=n_touchpoints)
    js = load_journeys(data.events)
    truth = data.segments.set_index("customer_id")["segment"]
    auto = SegmentModel(n_segments="auto", auto_range=(2, 6), seed=0).fit(js)
    members = auto.predict(js).frame
    fixed = SegmentModel(n_segments=K, seed=0).fit(js)
    fixed_members = fixed.predict(js).frame
    ids, x = frequency_vectors(js)
    km = KMeans(K, n_init=10, random_state=0).fit(x)
    return {"separation": sep, "journeys/customer": round(js.n_journeys / n, 2),
            "K chosen": auto.n_segments_,
            "ARI (BIC's K)": adjusted_rand_score(truth[members["customer_id"]],
                                                 members["segment"]),
            "ARI (true K)": adjusted_rand_score(truth[fixed_members["customer_id"]],
                                                fixed_members["segment"]),
            "ARI (true mixture)": oracle_ari(data, js),
            "ARI k-means": adjusted_rand_score(truth[ids], km.labels_)}


def recovery(n: int) -> None:
    rows = [recovery_cell(n, 3, sep, jpc, seed=11)
            for sep in (1.0, 0.8, 0.6, 0.4) for jpc in (1, 2, 4, 6)]
    print(f"\nRecovery: {n:,} customers, true K = 3, K chosen by BIC among 2..6\n")
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    rows = []
    for K in (2, 4, 5):
        for n_t in (6, 10):
            r = recovery_cell(n, K, 1.0, 4, seed=12, n_touchpoints=n_t)
            rows.append({"true K": K, "touchpoints": n_t,
                         **{k: r[k] for k in ("K chosen", "ARI (BIC's K)", "ARI (true K)",
                                              "ARI (true mixture)", "ARI k-means")}})
    print("\nBIC's choice at other true K (separation 1, 4 journeys per customer; with 6 "
          "touchpoints, 4 or 5 personas must share home touchpoints)\n")
    print(pd.DataFrame(rows).round(3).to_string(index=False))


def per_iteration(stats, kind: str, K: int, n_stages: int = 3, iters: int = 5) -> float:
    """Seconds per mixture EM iteration (E-step over customers + M-step)."""
    seqs = stats.sequences
    n_x = len(seqs.symbols)
    comp = (em.MarkovComponent(seqs.codes, seqs.offsets, n_x) if kind == "markov"
            else em.HMMComponent(seqs.codes, seqs.offsets, n_x, n_stages))
    bags = em.customer_bags(stats)
    params = comp.init(K, np.random.default_rng(0))
    em.em(comp, bags, params, np.full(K, 1 / K), max_iter=2, tol=-np.inf, n_obs=1.0)  # warm
    t = time.perf_counter()
    em.em(comp, bags, params, np.full(K, 1 / K), max_iter=iters + 1, tol=-np.inf, n_obs=1.0)
    return (time.perf_counter() - t) / iters


def stages_iteration(stats, K: int, iters: int = 5) -> float:
    """Seconds per EM iteration of one stages HMM with K states on the same sequences."""
    seqs = stats.sequences
    p = hmm.random_params(K, len(seqs.symbols) * N_STATUS, np.random.default_rng(0))
    hmm.em(seqs.codes, seqs.offsets, p, seqs.weight, max_iter=2, tol=-np.inf)
    t = time.perf_counter()
    hmm.em(seqs.codes, seqs.offsets, p, seqs.weight, max_iter=iters, tol=-np.inf)
    return (time.perf_counter() - t) / iters


def speed(n_customers: int, kind: str = "markov", table: bool = True) -> None:
    t = time.perf_counter()
    data = make_mixture_data(n_customers, 4, journeys_per_customer=4.1, n_touchpoints=8,
                             seed=5)
    gen = time.perf_counter() - t
    t = time.perf_counter()
    js = load_journeys(data.events)
    read = time.perf_counter() - t
    t = time.perf_counter()
    stats = SegmentModel().stats_of(js)
    st = time.perf_counter() - t
    print(f"\nSpeed: {n_customers:,} customers, {js.n_journeys:,} journeys, {js.n_events:,} "
          f"touchpoints, {stats.sequences.n_sequences:,} distinct sequences, true K = 4")
    print(f"generate {gen:.1f} s, read journeys {read:.1f} s, statistics {st:.1f} s")
    t = time.perf_counter()
    with warnings.catch_warnings(record=True):
        m = SegmentModel(n_segments="auto", auto_range=(2, 6), restarts=3, seed=0,
                         kind=kind).fit_stats(stats)
    fit = time.perf_counter() - t
    cpu = time.process_time()
    print(f"fit {kind} segments, K = 2..6, 3 restarts: {fit:.1f} s wall, {cpu:.1f} s CPU "
          f"of the process so far (K chosen {m.n_segments_}; {m.n_iter_} EM iterations in the "
          f"kept fit; log-likelihood {m.log_likelihood_:,.1f})")
    print(m.selection_.round(1).to_string(index=False))
    if not table:
        return
    rows = []
    for K in (2, 3, 4, 5, 6):
        rows.append({"K": K, "markov mixture s/iter": per_iteration(stats, "markov", K),
                     "hmm mixture (3 stages) s/iter": per_iteration(stats, "hmm", K, iters=2),
                     "one stages HMM, K states s/iter": stages_iteration(stats, K, iters=2)})
    print("\nSeconds per EM iteration (all customers)\n")
    print(pd.DataFrame(rows).round(3).to_string(index=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="recovery at 1,500 customers, speed "
                    "at 30k customers")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--recovery-only", action="store_true")
    ap.add_argument("--kind", choices=("markov", "hmm"), default="markov",
                    help="segment process of the timed fit (hmm: 3 stages per segment)")
    ap.add_argument("--customers", type=int, default=None,
                    help="customers of the speed run (default 300,000; --quick 30,000)")
    ap.add_argument("--no-table", action="store_true",
                    help="skip the seconds-per-iteration table")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}")
    if not args.speed_only:
        recovery(1500 if args.quick else 3000)
    if not args.recovery_only:
        speed(args.customers or (30_000 if args.quick else 300_000), args.kind,
              not args.no_table)


if __name__ == "__main__":
    main()
