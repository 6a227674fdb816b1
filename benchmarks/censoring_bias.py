"""Censored journeys and the Markov fit (issue 17): drop-off and P(conversion) on a process with
KNOWN parameters, logs cut so that 0%, 15% and 40% of the journeys are in flight.

The process is tests/known_process.py (three touchpoints, P(drop-off) 0.2 / 0.1 / 0.1 after
them, gamma holding times, gap 14 days). For each share and seed the log is cut, and three
fits are compared: the Markov chain with the survival term (``censored="survival"``, the
default), the old fit (``censored="ignore"``, as ChannelAttribution), and the stages HMM (K=3,
which represents this chain exactly: one stage per touchpoint, whose drop-off exit is the
touchpoint's) with the survival term of the censored last step (``censored="survival"``, the
default) and without it (``"ignore"``: exit factor 1, the fit before issue 17).

    .venv/bin/python benchmarks/censoring_bias.py [--customers 20000] [--seeds 4]

Prints the mean over seeds (and the standard error of that mean).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import known_process as kp  # noqa: E402

from journeymodel.models.markov.model import MarkovJourneyModel  # noqa: E402
from journeymodel.models.stages.fit import absorption  # noqa: E402
from journeymodel.models.stages.model import StageModel  # noqa: E402

SPAN = 60.0


def truth_p_conversion() -> float:
    """P(conversion) from the start of the known process (absorbing-chain solve)."""
    Q = kp.P[:, :3]
    return float(kp.START @ np.linalg.solve(np.eye(3) - Q, kp.P[:, 3]))


def row(model) -> np.ndarray:
    P = model.transition_matrix()
    drop = P.sel(from_state=list(kp.TOUCHPOINTS), to_state="(dropoff)").values
    return np.concatenate([drop, [model.p_conversion_[0]]])


def stage_row(model) -> np.ndarray:
    """Drop-off after each touchpoint (the exit of the stage emitting it most) and
    P(conversion) from the start."""
    idx = [model.symbols_.index(t) for t in kp.TOUCHPOINTS]
    stage = np.argmax(model.emissionprob_[:, idx], axis=0)
    start = model.startprob_ @ absorption(model.stage_fit())
    return np.concatenate([model.exitprob_[stage, 3], [start[0]]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args()
    print(f"known process: {args.customers:,} customers starting over {SPAN:g} days, "
          f"{args.seeds} seeds")
    print(f"truth: P(drop-off) after a_web, b_email, c_call = {kp.P[:, 4].tolist()}, "
          f"P(conversion) from the start = {truth_p_conversion():.3f}")
    head = f"{'in flight':>10} {'fit':<22}" + "".join(
        f"{c:>16}" for c in ("drop a_web", "drop b_email", "drop c_call", "P(conv) start"))
    print(head)
    for share in (0.0, 0.15, 0.4):
        res: dict[str, list] = {"markov survival": [], "markov ignore": [],
                                "stages survival (K=3)": [], "stages ignore (K=3)": []}
        real = []
        for seed in range(args.seeds):
            frame = kp.simulate(args.customers, seed, span=SPAN)
            js = kp.journeys(kp.cut(frame, kp.cut_for_share(frame, share, span=SPAN)))
            real.append(js.outcome_counts()["censored"] / js.n_journeys)
            res["markov survival"].append(row(MarkovJourneyModel().fit(js)))
            res["markov ignore"].append(row(MarkovJourneyModel(censored="ignore").fit(js)))
            for how in ("survival", "ignore"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # convergence notes of the small HMM
                    m = StageModel(n_stages=3, seed=seed, restarts=1, censored=how).fit(js)
                res[f"stages {how} (K=3)"].append(stage_row(m))
        for name, values in res.items():
            v = np.array(values)
            mean, se = v.mean(axis=0), v.std(axis=0, ddof=1) / np.sqrt(len(v))
            cells = "".join(f"{'-':>16}" if np.isnan(m) else f"{m:>9.3f} ±{s:.3f}".rjust(16)
                            for m, s in zip(mean, se, strict=True))
            print(f"{np.mean(real):>10.1%} {name:<22}{cells}")


if __name__ == "__main__":
    main()
