"""Where one batch of posterior draws of ``attribute EVENTS --order 1`` spends its time
(issue 20).

    .venv/bin/python benchmarks/attribution_batch.py [--events 800000] [--draws 5120]
        [--repeats 20]

The removal-attribution intervals draw the chain's rows 10,000 times, in two batches of
5,120 draws at order 1 (one per pool thread). Per batch, on one thread, this prints the
minimum over ``--repeats`` of: the gamma variates alone, ``draw_rows`` (variates and the
division by the rows' sums), beside it the division as it was before (the whole array's row
sums spread by ``sums[:, row_of]``, an F-ordered temporary of the batch's size), then
``start_values`` (the dense inverses of ``I - Q`` and the removal scenarios) with the
inverses alone; last the whole attribution of 10,000 draws on the pool's threads. The variates
and the inverses cannot change (the same seed gives the same bits); the rest is overhead.

The data: the tracker-style log of ``benchmarks/bench_ingest.py`` (``make_tracker_log``,
imported), ``--events`` rows (8 per customer). Wall milliseconds in one process; on a shared
machine they are pessimistic (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import tracker_journeys  # noqa: E402  (the one generator of the log)

from journeymodel.blas import one_blas_thread  # noqa: E402
from journeymodel.models.markov import chain as mc  # noqa: E402
from journeymodel.models.markov.model import MarkovJourneyModel  # noqa: E402


def whole_array_division(conc, g: np.ndarray) -> np.ndarray:
    """The division of draw_rows before issue 20's change (its common case: no empty row)."""
    sums = np.add.reduceat(g, conc.indptr[:-1], axis=1)
    return np.divide(g, sums[:, conc.rows()], out=g)


def best(fn, repeats: int) -> float:
    """Smallest wall time of ``fn()`` in ms."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=800_000)
    ap.add_argument("--draws", type=int, default=5_120, help="draws in the batch")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    model = MarkovJourneyModel(order=1).fit_attribution(tracker_journeys(args.events))
    chain = model.chain_
    conc, n, D = chain.csr, chain.n, args.draws
    per = mc.stream_draws(conc.nnz)
    conv = np.array([n + chain.absorbing.index("conversion")])
    removed = np.vstack([np.zeros((1, n), bool), np.eye(n, dtype=bool)[1:]])
    weights = np.ones((1, n))
    print(f"chain: {n} states, {conc.nnz} transitions; batch of {D:,} draws in streams of "
          f"{per}")

    def variates():
        g = np.empty((D, conc.nnz))
        for i, gen in enumerate(mc.draw_streams(0, D, per).generators):
            part = g[i * per:(i + 1) * per]
            gen.standard_gamma(np.broadcast_to(conc.data, part.shape), out=part)
        return g

    data = mc.draw_rows(conc, D, mc.draw_streams(0, D, per))
    qr, qc, at, _ = mc._transient_split(conc, n, data, conv, weights, values=False)
    rows = {}
    with one_blas_thread():
        rows["gamma variates"] = best(variates, args.repeats)
        rows["draw_rows (variates, division)"] = best(
            lambda: mc.draw_rows(conc, D, mc.draw_streams(0, D, per)), args.repeats)
        rows["  before: variates, whole-array division"] = best(
            lambda: whole_array_division(conc, variates()), args.repeats)
        rows["start_values (inverses, scenarios)"] = best(
            lambda: mc.start_values(conc, n, data, conv, weights, removed), args.repeats)
        rows["  the inverses alone"] = best(
            lambda: mc._inverses(n, qr * n + qc, data, at), args.repeats)
    rows["attribution, 10,000 draws, pool threads"] = best(
        lambda: model.attribution(n_draws=10_000, seed=0), max(3, args.repeats // 2))
    width = max(map(len, rows))
    print(f"{'part':{width}s}  min ms")
    for name, ms in rows.items():
        print(f"{name:{width}s}  {ms:6.1f}")
    print(f"load average at end: {os.getloadavg()} (timings on a shared machine are "
          "pessimistic)")


if __name__ == "__main__":
    main()
