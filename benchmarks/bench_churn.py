"""Benchmark the churn models at 10k and 100k customers, with peers side by side.

Run: ``.venv/bin/python benchmarks/bench_churn.py [--quick] [--chains N] [--models M,...]``
(lifetimes, when importable, runs beside BG/NBD: ``PYTHONPATH=<dir with lifetimes>`` works).

For each model and size it simulates an event log from the model's own generative story
(known truth, :mod:`journeymodel.models.churn.simulate`), reads it into journeys, fits the
hierarchical Bayesian model (NUTS) and reports: seconds to read, to compile, to sample, peak
Python memory of the fit (tracemalloc), convergence and the largest relative error of the
posterior means. Peers on the same BG/NBD data, when installed: lifetimes' ``BetaGeoFitter``
(maximum likelihood, no intervals) and pymc-marketing's ``BetaGeoModel``.

Compilation is a one-off per model structure and process (cached), so it is listed apart.
The machine is shared: the load average is printed before and after each fit; compare ratios
within one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import tracemalloc
import warnings

import numpy as np

TRUTH = {
    "sbg": {"regular": {"alpha": 0.704, "beta": 1.182},
            "highend": {"alpha": 0.668, "beta": 3.806}},
    "weibull": {"early": {"shape": 1.5, "scale": 20.0}, "late": {"shape": 0.8, "scale": 40.0}},
    "bgnbd": {"cdnow": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
              "heavy": {"r": 0.9, "alpha": 6.0, "a": 1.2, "b": 4.0}},
}
UNIT = {"sbg": "Y", "weibull": "M", "bgnbd": "W"}


def simulate(kind: str, n: int, seed: int):
    from journeymodel.models.churn import simulate as cs

    per = n // len(TRUTH[kind])
    if kind == "sbg":
        return cs.simulate_sbg(TRUTH[kind], per, 7, seed=seed)
    if kind == "weibull":
        return cs.simulate_weibull(TRUTH[kind], per, 48, seed=seed)
    return cs.simulate_bgnbd(TRUTH[kind], per, 39, seed=seed)


def worst_error(model, truth) -> float:
    ds = model.params()
    return max(abs(float(ds["mean"].sel(persona=p, param=k)) / v - 1)
               for p, params in truth.items() for k, v in params.items())


def run_ours(kind: str, n: int, chains: int, seed: int) -> dict:
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.churn.model import ChurnModel

    df, until = simulate(kind, n, seed)
    t0 = time.perf_counter()
    js = load_journeys(df, observed_until=until)
    read = time.perf_counter() - t0
    load = os.getloadavg()[0]
    tracemalloc.start()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = ChurnModel(kind, time_unit=UNIT[kind], chains=chains, seed=seed).fit(js)
    total = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    d = model.diagnostics_
    steps = float(model.posterior_["sample_stats"].to_dataset()["n_steps"].mean())
    nc = ",".join(model.info_["non_centered"]) or "-"
    return {"tool": "journeymodel", "model": kind, "customers": n, "rows": len(df),
            "read_s": read, "compile_s": model.info_["compile_seconds"],
            "fit_s": total - model.info_["compile_seconds"],
            "sample_s": model.info_["sample_seconds"], "peak_mb": peak,
            "converged": d.ok and not caught, "max_rel_err": worst_error(model, TRUTH[kind]),
            "note": f"R-hat {d.r_hat_max:.3f}, ESS {d.ess_bulk_min:.0f}, {d.divergences} div, "
                    f"{steps:.1f} steps/draw, non-centred {nc}, load {load:.2f}->"
                    f"{os.getloadavg()[0]:.2f}"}, js


def run_lifetimes(js, n: int) -> dict | None:
    """lifetimes' BetaGeoFitter on the same customers (one persona: it has no hierarchy)."""
    if importlib.util.find_spec("lifetimes") is None:
        return None
    from lifetimes import BetaGeoFitter

    from journeymodel.models.churn import data as cd
    from journeymodel.stats.customers import customer_stats

    stats = customer_stats(js)
    s = cd.rfm(stats, cd.UNIT_SECONDS["W"])
    tracemalloc.start()
    t0 = time.perf_counter()
    fitter = BetaGeoFitter(penalizer_coef=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # autograd overflow chatter
        fitter.fit(s.x, s.t_x, s.T)
    secs = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    p = fitter.params_
    return {"tool": "lifetimes (MLE, pooled)", "model": "bgnbd", "customers": n, "rows": "",
            "read_s": float("nan"), "compile_s": 0.0, "fit_s": secs, "sample_s": float("nan"),
            "peak_mb": peak, "converged": True, "max_rel_err": float("nan"),
            "note": "r={r:.3f} alpha={alpha:.2f} a={a:.3f} b={b:.3f} (one pooled "
                    "persona, no intervals)".format(**p)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k customers only")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--models", default="sbg,weibull,bgnbd")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [2_000] if args.quick else [10_000, 100_000]
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{args.chains} chains x 1000 draws (+1000 tuning)")
    peers = ("pymc-marketing: not installed (skipped)" if importlib.util.find_spec(
        "pymc_marketing") is None else "pymc-marketing: installed but not wired in")
    rows = []
    for kind in args.models.split(","):
        for n in sizes:
            row, js = run_ours(kind, n, args.chains, args.seed)
            rows.append(row)
            _print_row(row)
            if kind == "bgnbd":
                peer = run_lifetimes(js, n)
                if peer is not None:
                    rows.append(peer)
                    _print_row(peer)
                    print(f"    ratio journeymodel fit / lifetimes fit: "
                          f"{row['fit_s'] / peer['fit_s']:.2f}")
    print(peers)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def _print_row(r: dict) -> None:
    print(f"{r['tool']:<24} {r['model']:<8} {r['customers']:>7,} customers  "
          f"read {r['read_s']:6.2f}s  compile {r['compile_s']:6.2f}s  "
          f"fit {r['fit_s']:7.2f}s (sampling {r['sample_s']:7.2f}s)  "
          f"peak {r['peak_mb']:7.1f} MB  converged {str(r['converged']):<5}  "
          f"max rel err {r['max_rel_err']:.3f}  {r['note']}", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
