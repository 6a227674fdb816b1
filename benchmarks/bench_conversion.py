"""Benchmark: conversion by persona, journeymodel (counts) vs plain PyMC on per-customer rows.

20 personas at 10k, 100k and 1M customers (one completed journey each). Every fit runs in a
fresh process, as a command-line user would run it, so compilation is always included:

* ``journeymodel``: ``ConversionModel().fit(journeys)`` - counts per persona (vectorised), a
  Binomial likelihood over 20 cells, nutpie NUTS (or PyMC NUTS without nutpie);
* ``jm-pymc-nuts`` (``--pymc-nuts``): journeymodel with PyMC's own NUTS instead of nutpie
  (its compiled C code is reused from disk across processes; nutpie's numba code is not);
* ``pymc-rows``: the same hierarchical model (centred, same priors, draws, tune, chains) as a
  notebook writes it: a Bernoulli likelihood over one row per customer, ``pm.sample()``.

Columns: import (PyMC and friends), count (sufficient statistics), compile, sample, fit wall
(count + compile + sample + diagnostics), peak memory (max RSS), the convergence checks, and the
ratio of the peer's fit wall to journeymodel's at the same size.

Usage::

    .venv/bin/python benchmarks/bench_conversion.py            # 10k, 100k, 1M (peer at 10k)
    .venv/bin/python benchmarks/bench_conversion.py --quick    # 10k only
    .venv/bin/python benchmarks/bench_conversion.py --peer-max 100000   # peer: ~10x longer
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

N_PERSONAS = 20


def simulate(n_customers: int, seed: int):
    """Persona and outcome per customer (20 personas, Dirichlet shares, rates 2%-40%)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    share = rng.dirichlet(np.full(N_PERSONAS, 3.0))
    rates = rng.uniform(0.02, 0.4, N_PERSONAS)
    persona = rng.choice(N_PERSONAS, size=n_customers, p=share).astype(np.int32)
    converted = rng.random(n_customers) < rates[persona]
    return persona, converted, rates


def journey_set(persona, converted):
    """A JourneySet of one-touchpoint journeys, built from arrays (vectorised)."""
    import numpy as np

    from journeymodel.data.journeys import CONVERSION, DROPOFF, JourneySet
    from journeymodel.data.ledger import Ledger

    n = len(persona)
    nan = np.full(n, np.nan)
    return JourneySet(
        codes=np.zeros(n, np.int32), offsets=np.arange(n + 1, dtype=np.int64),
        touchpoints=("web",), outcome=np.where(converted, CONVERSION, DROPOFF).astype(np.int8),
        weight=np.ones(n), customer=np.arange(n, dtype=np.int64), customers=np.array(["c"]),
        persona=persona, personas=tuple(f"persona_{i:02d}" for i in range(N_PERSONAS)),
        start=nan, end=nan.copy(), value=np.zeros(n), times=nan.copy(), time_kind="none",
        observed_until=float("nan"), gap=None,
        ledger=Ledger(source="<bench>", rows_read=n, rows_used=n))


def worker_journeymodel(n: int, seed: int, sampler: str | None = None) -> dict:
    t0 = time.perf_counter()
    import pymc  # noqa: F401  (timed as import, like the peer)

    from journeymodel.models.conversion.model import ConversionModel
    from journeymodel.stats.conversion import count_conversions

    t_import = time.perf_counter() - t0
    persona, converted, rates = simulate(n, seed)
    journeys = journey_set(persona, converted)
    t0 = time.perf_counter()
    count_conversions(journeys)
    t_count = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = ConversionModel(seed=seed, sampler=sampler).fit(journeys)
    fit_wall = time.perf_counter() - t0  # fit counts again: included in fit wall
    table = model.rates()
    inside = float(((table["hdi_low"] <= rates) & (rates <= table["hdi_high"])).mean())
    d = model.diagnostics_
    return {"import": t_import, "count": t_count, "compile": model.timing_["compile_seconds"],
            "sample": model.timing_["sample_seconds"], "fit": fit_wall, "ok": d.ok,
            "r_hat_max": d.r_hat_max, "ess_bulk_min": d.ess_bulk_min,
            "divergences": d.divergences, "inside": inside,
            "param": model.parameterization_["levels"], "sampler": model.timing_["sampler"]}


def worker_pymc_rows(n: int, seed: int) -> dict:
    t0 = time.perf_counter()
    import numpy as np
    import pymc as pm

    from journeymodel.fit import bayes

    t_import = time.perf_counter() - t0
    persona, converted, rates = simulate(n, seed)
    t0 = time.perf_counter()
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 3.0)
        sigma = pm.HalfNormal("sigma_levels", 1.0)
        alpha = pm.Normal("logit_levels", mu, sigma, shape=N_PERSONAS)
        pm.Bernoulli("y", logit_p=alpha[persona], observed=converted.astype(np.int8))
    step = pm.NUTS(model=model, target_accept=0.95)  # compiles logp and gradient
    t_compile = time.perf_counter() - t0
    t1 = time.perf_counter()
    with model:
        tree = pm.sample(1000, tune=1000, chains=4, step=step, random_seed=seed,
                         progressbar=False, compute_convergence_checks=False)
    t_sample = time.perf_counter() - t1
    d = bayes.diagnose(tree)
    post = bayes.interval(1 / (1 + np.exp(-tree["posterior"]["logit_levels"])))
    inside = float(((post["hdi_low"].values <= rates) & (rates <= post["hdi_high"].values))
                   .mean())
    return {"import": t_import, "count": 0.0, "compile": t_compile, "sample": t_sample,
            "fit": time.perf_counter() - t0, "ok": d.ok, "r_hat_max": d.r_hat_max,
            "ess_bulk_min": d.ess_bulk_min, "divergences": d.divergences, "inside": inside,
            "param": "centered", "sampler": "pymc"}


def run_worker(tool: str, n: int, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", tool, str(n), str(seed)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1], "process": wall}
    out = json.loads(lines[-1])
    out["process"] = wall
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k customers only")
    parser.add_argument("--peer-max", type=int, default=10_000,
                        help="largest size the per-row PyMC peer runs at (slow beyond)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pymc-nuts", action="store_true",
                        help="also fit journeymodel with PyMC's NUTS instead of nutpie")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, n, seed = args.worker[0], int(args.worker[1]), int(args.worker[2])
        if tool == "pymc-rows":
            out = worker_pymc_rows(n, seed)
        else:
            out = worker_journeymodel(n, seed, "pymc" if tool == "jm-pymc-nuts" else None)
        out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    sizes = [10_000] if args.quick else [10_000, 100_000, 1_000_000]
    print(f"conversion by persona: {N_PERSONAS} personas, 4 chains x 1000 draws (+1000 tune); "
          f"each fit in a fresh process; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    header = (f"{'tool':<13}{'customers':>10}{'import':>8}{'count':>7}{'compile':>8}"
              f"{'sample':>8}{'fit wall':>9}{'process':>9}{'MB':>6}  {'R-hat':>6}{'ESS':>6}"
              f"{'div':>4}{'in HDI':>7}  {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for n in sizes:
        ours = run_worker("journeymodel", n, args.seed)
        rows = [("journeymodel", ours)]
        if args.pymc_nuts:
            rows.append(("jm-pymc-nuts", run_worker("jm-pymc-nuts", n, args.seed)))
        if n <= args.peer_max:
            rows.append(("pymc-rows", run_worker("pymc-rows", n, args.seed)))
        for tool, r in rows:
            if "error" in r:
                print(f"{tool:<13}{n:>10,}  failed: {r['error']}")
                continue
            ratio = r["fit"] / ours["fit"] if "fit" in ours else float("nan")
            print(f"{tool:<13}{n:>10,}{r['import']:>8.1f}{r['count']:>7.2f}{r['compile']:>8.1f}"
                  f"{r['sample']:>8.1f}{r['fit']:>9.1f}{r['process']:>9.1f}"
                  f"{r['max_rss_mb']:>6.0f}  {r['r_hat_max']:>6.3f}{r['ess_bulk_min']:>6.0f}"
                  f"{r['divergences']:>4}{r['inside']:>7.0%}  {ratio:>5.1f}x", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}; seconds; fit wall = count + "
          "compile + sample + diagnostics; process = the whole fresh process (imports too); "
          "in HDI = share of the 20 true rates inside their 94% HDI; ratio = peer fit wall / "
          "journeymodel fit wall at the same size")


if __name__ == "__main__":
    main()
