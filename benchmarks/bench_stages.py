"""Seconds per EM iteration: journeymodel's batched HMM vs hmmlearn's CategoricalHMM.

Both fit the same categorical HMM (K states, 8 touchpoints + 1 end symbol) to the same
sequences (mean length 8, drawn from a random 4-state HMM), from the same starting parameters:

* journeymodel: ``journeymodel.fit.hmm.em`` (compiled scaled forward-backward, weights = 1,
  no deduplication, so the work is exactly hmmlearn's);
* hmmlearn 0.3.3 ``CategoricalHMM.fit`` with ``implementation="scaling"`` (its fastest) and
  ``"log"`` (its default), ``init_params=""``, ``tol=-inf`` so every iteration runs.

It also times the whole ``StageModel(n_stages="auto")`` fit (K = 2..8, 3 restarts each) on the
demo generator's data at about 100k journeys, and the model's additive statistics
(``StageModel.stats_of``: the distinct encoded sequences) of the whole log and of the same log
in parts summed, as a distributed fit would take them.

Usage::

    .venv/bin/python benchmarks/bench_stages.py            # 10k, 100k, 1M journeys; K = 4, 6
    .venv/bin/python benchmarks/bench_stages.py --quick    # small sizes, a minute or so
    .venv/bin/python benchmarks/bench_stages.py --extrapolate-log   # skip hmmlearn "log" at 1M
    .venv/bin/python benchmarks/bench_stages.py --stats-only  # the statistics only, ~100k journeys
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from journeymodel.fit import hmm

N_TOUCH = 8
END = N_TOUCH  # the end symbol


def make_sequences(n: int, seed: int = 0):
    """n sequences from a random 4-state HMM; each step ends the sequence w.p. 1/8."""
    rng = np.random.default_rng(seed)
    p = hmm.random_params(4, N_TOUCH + 1, rng)
    B = p.emissionprob[:, :N_TOUCH] / p.emissionprob[:, :N_TOUCH].sum(1, keepdims=True)
    p.emissionprob = np.hstack([B * 7 / 8, np.full((4, 1), 1 / 8)])
    codes, offsets, _ = hmm.sample(p, n, stop_symbols=[END], max_length=200, seed=rng)
    return codes, offsets


def time_ours(codes, offsets, init, n_iter: int) -> tuple[float, float]:
    t = time.perf_counter()
    fit = hmm.em(codes, offsets, init, max_iter=n_iter, tol=-np.inf)
    return (time.perf_counter() - t) / n_iter, fit.history[0]


def time_hmmlearn(codes, offsets, init, n_iter: int, implementation: str):
    from hmmlearn.hmm import CategoricalHMM

    K, M = init.emissionprob.shape
    model = CategoricalHMM(n_components=K, n_features=M, implementation=implementation,
                           init_params="", params="ste", n_iter=n_iter, tol=-np.inf)
    model.startprob_, model.transmat_, model.emissionprob_ = (
        init.startprob.copy(), init.transmat.copy(), init.emissionprob.copy())
    X, lengths = codes.reshape(-1, 1), np.diff(offsets)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # numpy 2.5 vs hmmlearn
        model.fit(X, lengths)
    return (time.perf_counter() - t) / n_iter, model.monitor_.history[0]


def per_iteration(sizes, ks, log_max: int | None, ours_iter: int) -> pd.DataFrame:
    rows = []
    for n in sizes:
        codes, offsets = make_sequences(n)
        for K in ks:
            init = hmm.random_params(K, N_TOUCH + 1, np.random.default_rng(K))
            ours, ll = time_ours(codes, offsets, init, ours_iter)
            its = 2 if n <= 100_000 else 1
            scaling, ll_ref = time_hmmlearn(codes, offsets, init, its, "scaling")
            if log_max is None or n <= log_max:
                log, _ = time_hmmlearn(codes, offsets, init, its, "log")
                log_note = f"timed ({its} it)"
            else:  # hmmlearn's cost is linear in the number of journeys
                log = float(rows_log[K] * n / log_max)
                log_note = f"EXTRAPOLATED from {log_max:,}"
            if n == log_max:
                rows_log[K] = log
            rows.append({"journeys": n, "events": len(codes), "K": K, "ours_s": ours,
                         "hmmlearn_scaling_s": scaling, "hmmlearn_log_s": log,
                         "log_timing": log_note, "x_vs_scaling": scaling / ours,
                         "x_vs_log": log / ours, "ll_rel_diff": abs(ll - ll_ref) / abs(ll_ref)})
            print(_fmt(pd.DataFrame(rows[-1:])), flush=True)
    return pd.DataFrame(rows)


rows_log: dict[int, float] = {}


def auto_fit(n_customers: int, restarts: int, auto_range) -> dict:
    from journeymodel.data.datasets import make_demo_data
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.stages.model import StageModel

    js = load_journeys(make_demo_data(n_customers, seed=0).events)
    t = time.perf_counter()
    m = StageModel(n_stages="auto", restarts=restarts, auto_range=auto_range, seed=0).fit(js)
    seconds = time.perf_counter() - t
    return {"journeys": js.n_journeys, "events": js.n_events, "K_range": str(auto_range),
            "restarts": restarts, "seconds": seconds, "chosen_K": m.n_stages_,
            "demo_truth_K": 4}


def stats_timing(n_customers: int, n_parts: int) -> dict:
    """Seconds to take the stages statistics of a demo log whole and in ``n_parts`` parts (by
    customer) summed, and how much smaller the distinct sequences are than the journeys."""
    from journeymodel.data.datasets import make_demo_data
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.stages.model import StageModel

    js = load_journeys(make_demo_data(n_customers, seed=0).events)
    model = StageModel()
    t = time.perf_counter()
    whole = model.stats_of(js)
    whole_s = time.perf_counter() - t
    labels = np.arange(len(js.customers)) * n_parts // len(js.customers)
    parts = [js.take(np.flatnonzero(labels[js.customer] == i)) for i in range(n_parts)]
    t = time.perf_counter()
    stats = [model.stats_of(part) for part in parts]
    parts_s = time.perf_counter() - t
    t = time.perf_counter()
    total = sum(stats)
    sum_s = time.perf_counter() - t
    if not total.equals(whole):  # pragma: no cover - the property tests check this
        raise AssertionError("the parts' statistics do not add up to the whole's")
    return {"journeys": js.n_journeys, "events": js.n_events,
            "distinct_sequences": whole.sequences.n_sequences, "whole_s": whole_s,
            "parts": n_parts, "parts_s": parts_s, "sum_s": sum_s}


def _fmt(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--extrapolate-log", action="store_true",
                        help="do not time hmmlearn 'log' at 1M journeys; extrapolate from 100k")
    parser.add_argument("--stats-only", action="store_true",
                        help="time the additive statistics only")
    args = parser.parse_args()
    if args.stats_only:
        print(_fmt(pd.DataFrame([stats_timing(28_000, 10)])))
        return
    sizes = [2_000, 10_000] if args.quick else [10_000, 100_000, 1_000_000]
    ks = [4] if args.quick else [4, 6]
    log_max = 100_000 if args.extrapolate_log and not args.quick else None
    print(f"load average before: {os.getloadavg()} on {os.cpu_count()} cores")
    codes, offsets = make_sequences(100)
    hmm.em(codes, offsets, hmm.random_params(4, N_TOUCH + 1, np.random.default_rng(0)),
           max_iter=2)  # compile (numba cache) outside the timings
    table = per_iteration(sizes, ks, log_max, ours_iter=5)
    print("\nSeconds per EM iteration (same data, same start, same model)")
    print(_fmt(table))
    auto = auto_fit(1_500 if args.quick else 28_000, 3, [2, 4] if args.quick else [2, 8])
    print("\nWhole `--stages auto` fit (StageModel, demo generator data)")
    print(_fmt(pd.DataFrame([auto])))
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
