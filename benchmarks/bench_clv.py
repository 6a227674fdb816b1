"""Benchmark the BG/NBD (+ Gamma-Gamma spend) posterior end to end, beside pymc-marketing.

Run: ``.venv/bin/python benchmarks/bench_clv.py [--sizes 2357,100000] [--pmm PYTHON]
[--draws N] [--tune N] [--chains N] [--models bgnbd,spend] [--pmm-timeout SECONDS]``

For each size it writes a transaction log (``customer_id, date, event, amount``; every row a
purchase) and times, each in a fresh process (imports, reading, compiling and sampling count):

* journeymodel: ``journeymodel fit churn LOG --model bgnbd --conversion-label purchase``,
  once without and once with ``--value-col amount`` (the Gamma-Gamma spend model in the same
  NUTS run);
* pymc-marketing 1.3 (``--pmm``: the Python of a separate environment with ``pymc-marketing``
  and ``nutpie``; pymc-marketing pins its own PyMC): ``rfm_summary``, then ``BetaGeoModel``
  fitted with the nutpie sampler, then (for the spend column) ``GammaGammaModel`` with nutpie.

The 2,357-customer log is the CDNOW sample of Fader, Hardie & Lee (2005) when lifetimes (which
ships it) is importable, calibration period to 1997-09-30 (39 weeks); otherwise, and for the
larger sizes, a log simulated with CDNOW's published BG/NBD and Gamma-Gamma parameters over 39
weeks (:func:`journeymodel.models.churn.simulate.simulate_transactions`). Both tools use one
population (no personas), 4 chains x 1,000 draws + 1,000 tuning by default, and report their
convergence. The machine may be shared: the load average is printed beside every timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

CDNOW_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
START, END = "1997-01-01", "1997-09-30"

PMM_SCRIPT = textwrap.dedent("""
    import json, sys, time, warnings
    t0 = time.perf_counter()
    import pandas as pd
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel
    from pymc_marketing.clv.utils import rfm_summary
    log, draws, tune, chains, spend = sys.argv[1], *map(int, sys.argv[2:6])
    df = pd.read_csv(log, parse_dates=["date"])
    rfm = rfm_summary(df, "customer_id", "date", monetary_value_col="amount",
                      observation_period_end=pd.Timestamp(sys.argv[6]), time_unit="W")
    t1 = time.perf_counter()
    kw = dict(method="mcmc", nuts_sampler="nutpie", draws=draws, tune=tune, chains=chains,
              random_seed=0, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = BetaGeoModel()
        bg.fit(rfm[["customer_id", "frequency", "recency", "T"]], **kw)
    t2 = time.perf_counter()
    s = bg.fit_summary()
    out = {"import_read_s": t1 - t0, "bgnbd_s": t2 - t1, "r_hat": float(s["r_hat"].max()),
           "ess": float(s["ess_bulk"].min()),
           "means": {k: float(s.loc[k, "mean"]) for k in ["r", "alpha", "a", "b"]}}
    if spend:
        rep = rfm[rfm["frequency"] > 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gg = GammaGammaModel()
            gg.fit(rep[["customer_id", "monetary_value", "frequency"]], **kw)
        out["spend_s"] = time.perf_counter() - t2
    print(json.dumps(out))
""")


def cdnow_sample() -> pd.DataFrame | None:
    """The CDNOW sample (2,357 customers, 1997-01 to 1998-06) if lifetimes ships it here."""
    try:
        import lifetimes
    except ImportError:
        return None
    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_sample.txt"
    raw = pd.read_csv(path, sep=r"\s+", header=None,
                      names=["customer_id", "id2", "date", "quantity", "amount"])
    return pd.DataFrame({"customer_id": "c" + raw["customer_id"].astype(str),
                         "date": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"),
                         "event": "purchase", "amount": raw["amount"]})


def simulated(n: int, seed: int = 0) -> pd.DataFrame:
    from journeymodel.models.churn.simulate import simulate_transactions

    df, _ = simulate_transactions({"all": {**CDNOW_BGNBD, **CDNOW_GG}}, n, 39,
                                  seed=seed)
    start = pd.Timestamp(START)
    date = start + (df["timestamp"] - df["timestamp"].dt.normalize().min())
    return pd.DataFrame({"customer_id": df["customer_id"], "date": date.dt.tz_localize(None),
                         "event": "purchase", "amount": df["amount"].clip(lower=0.01)})


def make_log(n: int, folder: Path) -> tuple[Path, str]:
    df = cdnow_sample() if n == 2357 else None
    source = "CDNOW sample" if df is not None else "simulated (CDNOW parameters)"
    if df is None:
        df = simulated(n)
    df = df[df["date"] <= pd.Timestamp(END)]
    path = folder / f"tx_{n}.csv"
    df.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return path, f"{source}, {df['customer_id'].nunique():,} customers, {len(df):,} rows"


def run_ours(log: Path, spend: bool, args, folder: Path) -> dict:
    exe = shutil.which("journeymodel", path=str(Path(sys.executable).parent)) or "journeymodel"
    out = folder / ("spend.nc" if spend else "bgnbd.nc")
    cmd = [exe, "fit", "churn", str(log), "-o", str(out), "--model", "bgnbd", "--time-col",
           "date", "--touchpoint-col", "event", "--conversion-label", "purchase",
           "--observed-until", END, "--draws", str(args.draws), "--tune", str(args.tune),
           "--chains", str(args.chains), "--seed", "0", "--json"]
    if spend:
        cmd += ["--value-col", "amount"]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"journeymodel failed:\n{done.stderr[-2000:]}")
    info = json.loads(done.stdout[done.stdout.index("{"):])
    d = info["diagnostics"]
    return {"wall_s": wall, "compile_s": info["timing"]["compile_seconds"],
            "sample_s": info["timing"]["sample_seconds"], "r_hat": d["r_hat_max"],
            "ess": d["ess_bulk_min"], "divergences": d["divergences"], "load": load,
            "load_after": os.getloadavg()[0]}


def run_pmm(python: str, log: Path, spend: bool, args, folder: Path) -> dict:
    script = folder / "pmm_fit.py"
    script.write_text(PMM_SCRIPT)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        done = subprocess.run([python, str(script), str(log), str(args.draws), str(args.tune),
                               str(args.chains), str(int(spend)), END],
                              capture_output=True, text=True, timeout=args.pmm_timeout)
    except subprocess.TimeoutExpired:  # a lower bound of its time, said as one
        return {"wall_s": args.pmm_timeout, "timed_out": True, "load": load,
                "load_after": os.getloadavg()[0]}
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"pymc-marketing failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {**out, "wall_s": wall, "load": load, "load_after": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2357,100000")
    ap.add_argument("--pmm", default="/tmp/pmm/bin/python",
                    help="Python of an environment with pymc-marketing 1.3 and nutpie")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--models", default="bgnbd,spend",
                    help="which rows: bgnbd (BG/NBD alone), spend (BG/NBD + Gamma-Gamma)")
    ap.add_argument("--pmm-timeout", type=float, default=None,
                    help="stop pymc-marketing after this many seconds and print the time as "
                         "a lower bound (> T s, ratio > T / ours)")
    args = ap.parse_args()
    has_pmm = Path(args.pmm).exists()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in (int(s) for s in args.sizes.split(",")):
            log, what = make_log(n, folder)
            print(f"{n:,} customers: {what}", flush=True)
            for spend in [m == "spend" for m in args.models.split(",")]:
                ours = run_ours(log, spend, args, folder)
                peer = run_pmm(args.pmm, log, spend, args, folder) if has_pmm else None
                rows.append((n, spend, ours, peer))
                print(_row(n, spend, ours, peer), flush=True)
    print("\n| customers | model | journeymodel (compile / sample) | R-hat / ESS / div | "
          "pymc-marketing + nutpie | R-hat / ESS | ratio |")
    print("|---:|---|---:|---|---:|---|---:|")
    for n, spend, ours, peer in rows:
        print(_row(n, spend, ours, peer))


def _row(n, spend, ours, peer) -> str:
    what = "BG/NBD + spend" if spend else "BG/NBD"
    mine = (f"{ours['wall_s']:.1f} s ({ours['compile_s']:.1f} / {ours['sample_s']:.1f}; "
            f"load {ours['load']:.1f}-{ours['load_after']:.1f})")
    diag = f"{ours['r_hat']:.3f} / {ours['ess']:,.0f} / {ours['divergences']}"
    if peer is None:
        return f"| {n:,} | {what} | {mine} | {diag} | not run | - | - |"
    theirs = peer["wall_s"]
    load = f"load {peer['load']:.1f}-{peer['load_after']:.1f}"
    if peer.get("timed_out"):
        return (f"| {n:,} | {what} | {mine} | {diag} | > {theirs:.0f} s (stopped; {load}) | "
                f"- | > {theirs / ours['wall_s']:.1f}x |")
    return (f"| {n:,} | {what} | {mine} | {diag} | {theirs:.1f} s ({load}) | "
            f"{peer['r_hat']:.3f} / {peer['ess']:,.0f} | {theirs / ours['wall_s']:.2f}x |")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
