"""What changed, and for whom: journeys compared between periods and between segments.

Every transition probability of the Markov chain (from a touchpoint state ``a`` to the next
state ``b``) and every exit rate (from ``a`` to ``conversion``, ``dropoff``, ``churn``) is
compared between each group and the baseline of all other groups, as Bayesian posteriors. The
counts are those of :mod:`journeymodel.stats.groups` (only transitions whose fate is
observable: see its docstring for the censoring rule).

**Posterior.** Each row (the next states of ``a``) is Dirichlet, as in the Markov model:
counts plus a prior of total weight ``prior`` (default 1) spread like the whole log's row,
``prior * pbar_ab`` on each next state ``b`` seen from ``a`` anywhere in the log. A rate's
marginal is then Beta: in group ``g``, with ``c`` transitions ``a -> b`` out of ``n`` visits
of ``a``, ``Beta(c + prior * pbar, n - c + prior * (1 - pbar))``; the baseline the same with
the counts of all other groups. ``rate`` and ``baseline_rate`` are the posterior means,
``diff`` their difference, ``low``/``high`` the 94% highest-density interval of the difference
(posterior draws, :func:`journeymodel.fit.intervals.hdi`).

**p_diff** is the posterior probability that the difference has the sign shown. The rates are
compared on the log-odds scale, where the sign is the same: ``logit X`` of ``X ~ Beta(a, b)``
has mean ``digamma(a) - digamma(b)`` and variance ``trigamma(a) + trigamma(b)`` exactly, and
the difference of two such log-odds is very nearly normal, so
``p_diff = Phi(|mean| / sd)`` with tails accurate far beyond what draws resolve (the tests
check it against draws).

**Many comparisons.** A log by week over a year makes thousands of comparisons; a rule
"p_diff >= 0.95" alone would list about one in ten of them on data where nothing changed. A
difference is listed only if ``p_diff >= min_prob`` (default 0.95) **and** it passes the
Benjamini-Hochberg rule at false-discovery rate ``fdr`` (default 5%) over all comparisons made,
each taken with the two-sided tail ``2 * (1 - p_diff)``. On data without any real difference,
a run then lists anything at most ``fdr`` of the time.

**Impact**, the conversions at stake: for a transition ``a -> b``,
``diff * journeys * (P(convert | b) - P(convert | a))``; for the exit to conversion
``diff * journeys``; for the exits to drop-off and churn ``diff * journeys * (0 - P(convert |
a))`` (they convert with probability 0). ``journeys`` are the journeys that passed through
``a`` in the group, ``P(convert | .)`` the absorption probabilities of the chain of the whole
log. Findings are ranked by the size of the impact (sign kept), ties broken by kind, from, to
and group, so a busy step that changes a little (a self-loop, which moves no conversion) does
not crowd out a rare step that loses conversions.

**Periods.** With ``period:LENGTH`` a credible change found in consecutive periods (same step,
same sign) is one finding, with its ``start`` and ``end`` (inclusive): its numbers are computed
again for the run of periods together against all other periods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from journeymodel.data.journeyset import JourneySet
from journeymodel.errors import OptionError
from journeymodel.stats.groups import (
    GroupedTransitions,
    Grouping,
    grouped_transitions,
    parse_by,
    period_start,
)
from journeymodel.stats.transitions import decode_keys

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.data.options import ReadOptions
    from journeymodel.models.base import Result

__all__ = ["CI", "FDR", "MIN_PROB", "Comparison", "compare", "compare_stats"]

MIN_PROB = 0.95
FDR = 0.05
CI = 0.94
PRIOR = 1.0
#: Posterior draws behind each finding's interval.
N_DRAWS = 4000
EXITS = {-1: "conversion", -2: "dropoff", -3: "churn"}
#: The log-odds normal approximation of p_diff is used as it is where every Beta shape is at
#: least this and the tail is tiny (< 1e-14) or too large to be listed (>= the refined range,
#: REFINE_TAIL or the false-discovery rate if larger: a listed difference has 2 x tail <= fdr);
#: elsewhere the tail is integrated (:func:`below_probability`). Below shape ~10 the log-odds
#: are visibly skewed: Beta(0.14, 491) against Beta(73, 418) has a tail of 5e-8, the
#: approximation says 0.05.
REFINE_SHAPE = 10.0
REFINE_TAIL = 0.05
_GRID = 200  # relative error < 0.2% against 1,600 points (3,000 random cells)
KEYS = ("group", "start", "end", "kind", "from", "to", "rate", "baseline_rate", "diff", "low",
        "high", "p_diff", "journeys", "impact")


@dataclass
class Comparison:
    """What :func:`compare` found.

    Attributes
    ----------
    by : str
        The grouping (``period:7D``, ``device``, ...).
    groups : list of str
        Every group compared (periods in time order, categories sorted).
    differences : DataFrame
        The credible differences, most important first, columns :data:`KEYS`.
    cells : DataFrame
        Every comparison made (group, from, to, kind, rate, baseline_rate, diff, p_diff,
        pooled_rate (the whole log's), visits, journeys, impact, listed): what the report's
        heat map draws.
    tests : int
        Number of comparisons made (the family of the false-discovery rule).
    notes : list of str
    """

    by: str
    groups: list[str]
    differences: pd.DataFrame
    cells: pd.DataFrame
    tests: int
    min_prob: float
    fdr: float
    ci: float
    is_period: bool
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"by", "groups", "differences": [{group, start, end, kind, from, to, rate,
        baseline_rate, diff, low, high, p_diff, journeys, impact}]}``, ranked."""
        rows = [{k: _plain(row[k]) for k in KEYS} for row in
                self.differences.to_dict(orient="records")]
        return {"by": self.by, "groups": list(self.groups), "differences": rows}

    def sentences(self, n: int = 3) -> list[str]:
        """The top ``n`` findings in words, e.g. "store -> conversion fell from 0.21 to 0.05
        between 3 and 23 March 2025, about 40 conversions lost"."""
        return [_sentence(row, self.is_period) for row in
                self.differences.head(n).to_dict(orient="records")]

    def result(self) -> Result:
        """Tables and notes for the terminal (:func:`journeymodel.cli.output.print_result`)."""
        from journeymodel.models.base import Result

        table = self._table()
        kinds = {c: "name" for c in table.columns}
        kinds.update({"p_diff": "probability", "conversions": "count"})
        n = len(self.differences)
        what = "What changed" if self.is_period else "Where segments differ"
        title = f"{what} ({self.by}): {n} credible difference{'s' * (n != 1)}"
        notes = [f"- {s}" for s in self.sentences()] + self.notes
        return Result(json=self.to_json(), tables=[(title, table)] if n else [],
                      frame=self.differences.copy(), notes=notes, kinds=kinds)

    def _table(self) -> pd.DataFrame:
        """One line per finding: when or who, the step, its rate elsewhere and here, the
        interval of the difference, p_diff and the conversions at stake."""
        d = self.differences
        rows = d.to_dict(orient="records")
        return pd.DataFrame({
            "when" if self.is_period else "group": [_when(r, self.is_period) for r in rows],
            "step": [f"{r['from']} -> {r['to']}" for r in rows],
            "others -> here": [f"{r['baseline_rate']:.3f} -> {r['rate']:.3f}"
                               for r in rows],
            f"{round(100 * self.ci)}% interval": [f"{r['low']:+.3f} .. {r['high']:+.3f}"
                                                  for r in rows],
            "p_diff": d["p_diff"].to_numpy(),
            "conversions": d["impact"].round(1).to_numpy(),
        })


# ---------------------------------------------------------------------------------------------
# Entry points


def compare(journeys: JourneySet | str | Path | pd.DataFrame, by: str | Grouping, *,
            order: int = 1, collapse_repeats: bool = True, min_prob: float = MIN_PROB,
            fdr: float = FDR, top: int | None = None, prior: float = PRIOR, ci: float = CI,
            seed: int = 0, options: ReadOptions | None = None) -> Comparison:
    """Compare every transition and exit rate between groups: what changed, and for whom.

    Parameters
    ----------
    journeys : JourneySet, path or DataFrame
        Journeys, or an event log (read with ``options``). ``column:NAME`` needs the event
        log: the column is read as each customer's group (its first value in time order).
    by : str
        ``period:LENGTH`` (``1D``, ``7D``, ``30D``, ``1M``, ``12h``; a number for period
        timestamps): the period of each transition; ``device``: the device of the touchpoint
        left; ``persona`` or ``column:NAME``: the customer's value.
    order : int
        Markov order (window length 1..4), as ``fit markov --order``.
    collapse_repeats : bool
        Merge consecutive identical states (as the Markov model does by default).
    min_prob : float
        List differences whose ``p_diff`` is at least this (0.5 .. 1).
    fdr : float
        False-discovery rate of the Benjamini-Hochberg rule over all comparisons.
    top : int, optional
        Keep the ``top`` most important findings.
    prior : float
        Total Dirichlet prior weight of a row, spread like the whole log's row.
    ci : float
        Mass of the interval of each difference.
    seed : int
        Seed of the posterior draws behind the intervals (same seed, same numbers).
    options : ReadOptions, optional
        Reading options when ``journeys`` is a file or DataFrame.

    Returns
    -------
    Comparison

    Raises
    ------
    OptionError
        A bad ``by`` (``period:7X``), option value, a grouping the log cannot give (no device
        column), or fewer than two groups with transitions to compare.
    InputError
        An unknown ``column:NAME``, or an unreadable log.

    Examples
    --------
    >>> import journeymodel as jm
    >>> data = jm.make_demo_data(1500, seed=3)
    >>> found = compare(jm.load_journeys(data.events), by="device")
    >>> found.groups
    ['desktop', 'mobile', 'store']
    >>> sorted(found.to_json())
    ['by', 'differences', 'groups']
    """
    grouping = parse_by(by) if isinstance(by, str) else by
    _check_options(min_prob, fdr, top, prior, ci)
    journeys = _journeys_for(journeys, grouping, options)
    stats = grouped_transitions(journeys, grouping, order, collapse_repeats)
    return compare_stats(stats, min_prob=min_prob, fdr=fdr, top=top, prior=prior, ci=ci,
                         seed=seed, source=journeys.ledger.source)


def _journeys_for(source, grouping: Grouping, options) -> JourneySet:
    if isinstance(source, JourneySet):
        if grouping.kind == "column":
            raise OptionError(
                f"--by {grouping.text}: a column is read from the event log; pass the file or "
                "DataFrame, not journeys")
        return source
    from journeymodel.data.journeys import load_journeys
    from journeymodel.data.options import ReadOptions
    from journeymodel.errors import InputError

    options = options or ReadOptions()
    if grouping.kind != "column":
        return load_journeys(source, options)
    try:  # the column is read as each customer's persona: its first value in time order
        return load_journeys(source, options.replace(persona_col=grouping.column))
    except InputError as exc:
        raise InputError(str(exc).replace("given by --persona-col",
                                          f"given by --by {grouping.text}")) from None


def _check_options(min_prob, fdr, top, prior, ci) -> None:
    if not 0.5 <= min_prob < 1:
        raise OptionError(f"--min-prob must be at least 0.5 and below 1 (got {min_prob!r})")
    if not 0 < fdr < 1:
        raise OptionError(f"--fdr must be between 0 and 1 (got {fdr!r})")
    if top is not None and (isinstance(top, bool) or int(top) != top or top < 1):
        raise OptionError(f"--top must be a whole number >= 1 (got {top!r})")
    if not (np.isfinite(prior) and prior > 0):
        raise OptionError(f"prior must be a positive number (got {prior!r})")
    if not 0 < ci < 1:
        raise OptionError(f"--ci must be between 0 and 1 (got {ci!r})")


def compare_stats(stats: GroupedTransitions, *, min_prob: float = MIN_PROB, fdr: float = FDR,
                  top: int | None = None, prior: float = PRIOR, ci: float = CI, seed: int = 0,
                  source: str | None = None) -> Comparison:
    """:func:`compare` from the statistic alone (e.g. summed over parts of a log)."""
    _check_options(min_prob, fdr, top, prior, ci)
    table = _Table(stats, source)
    post = table.posterior(table.C, table.n, prior, max(REFINE_TAIL, fdr))
    passed = _credible(post, min_prob, fdr, table.tested)
    impact = table.impact(post["diff"])
    cells = table.cells_frame(post, impact, passed)
    found = _findings(table, post, impact, passed, prior)
    found = _rank(found)
    if top is not None:
        found = found.head(int(top))
    found = _intervals(found, ci, seed)
    notes = table.notes(int(table.tested.sum()), min_prob, fdr)
    return Comparison(stats.grouping.text, table.labels, found.reset_index(drop=True), cells,
                      int(table.tested.sum()), min_prob, fdr, ci, stats.grouping.is_period,
                      notes)


# ---------------------------------------------------------------------------------------------
# The counts as a dense table: groups x (from, to) pairs


class _Table:
    """Counts of one statistic laid out for the posterior: ``C[g, p]`` transitions of pair
    ``p`` in group ``g``, ``n[g, p]`` visits of the pair's from-state in ``g``, totals over
    groups, and the names."""

    def __init__(self, stats: GroupedTransitions, source: str | None) -> None:
        self.stats = stats
        g_codes = np.unique(stats.group)
        if len(g_codes) < 2:
            raise OptionError(_few_groups(stats, g_codes, source))
        self.g_codes = g_codes
        self.labels = group_labels(stats, g_codes)
        pair = np.unique(np.stack([stats.from_key, stats.to_key]), axis=1)
        self.f_key, self.t_key = pair[0], pair[1]
        G, P = len(g_codes), pair.shape[1]
        gi = np.searchsorted(g_codes, stats.group)
        pi = _pair_index(self.f_key, self.t_key, stats.from_key, stats.to_key)
        self.C = np.zeros((G, P))
        np.add.at(self.C, (gi, pi), stats.count)
        states = np.unique(self.f_key)
        fi = np.searchsorted(states, self.f_key)
        visits = np.zeros((G, len(states)))
        np.add.at(visits, (gi, np.searchsorted(states, stats.from_key)), stats.count)
        self.n = visits[:, fi]
        jr = np.zeros((G, len(states)))
        keep = np.isin(stats.visit_group, g_codes) & np.isin(stats.visit_key, states)
        np.add.at(jr, (np.searchsorted(g_codes, stats.visit_group[keep]),
                       np.searchsorted(states, stats.visit_key[keep])), stats.journeys[keep])
        self.J = jr[:, fi]
        total_c, total_n = self.C.sum(axis=0), self.n.sum(axis=0)
        self.pbar = total_c / total_n
        self.tested = ((self.n > 0) & (total_n - self.n > 0) & (self.pbar < 1)[None, :])
        self.names = state_names(stats, np.concatenate([self.f_key, self.t_key]))
        self.from_name = self.names[:P]
        self.to_name = self.names[P:]
        self.kind = np.where(self.t_key < 0, "exit", "transition")
        self.p_conv = conversion_probability(stats, self.f_key, self.t_key, total_c)

    def posterior(self, C: np.ndarray, n: np.ndarray, prior: float,
                  refine_tail: float = REFINE_TAIL) -> dict[str, np.ndarray]:
        """Beta parameters, means, difference and p_diff of group vs the rest (any shape
        broadcasting with the pairs)."""
        total_c, total_n = self.C.sum(axis=0), self.n.sum(axis=0)
        return beta_comparison(C, n, total_c - C, total_n - n, self.pbar, prior, refine_tail)

    def posterior_at(self, c: float, n: float, p: int, prior: float) -> dict[str, np.ndarray]:
        """:meth:`posterior` of one pair ``p`` with ``c`` transitions out of ``n`` visits."""
        total_c, total_n = self.C[:, p].sum(), self.n[:, p].sum()
        return beta_comparison(np.array([c]), np.array([n]), np.array([total_c - c]),
                               np.array([total_n - n]), self.pbar[p], prior)

    def impact(self, diff: np.ndarray) -> np.ndarray:
        """Conversions at stake of each difference (module docstring)."""
        pc_from, pc_to = self.p_conv
        gain = np.where(self.t_key == -1, 1.0, pc_to - pc_from)
        return diff * self.J * gain[None, :]

    def cells_frame(self, post, impact, passed) -> pd.DataFrame:
        g, p = np.nonzero(self.tested)
        return pd.DataFrame({
            "group": np.asarray(self.labels, dtype=object)[g],
            "from": self.from_name[p], "to": self.to_name[p], "kind": self.kind[p],
            "rate": post["rate"][g, p], "baseline_rate": post["baseline_rate"][g, p],
            "diff": post["diff"][g, p], "p_diff": post["p_diff"][g, p],
            "pooled_rate": self.pbar[p], "visits": self.n[g, p], "journeys": self.J[g, p],
            "impact": impact[g, p],
            "listed": passed[g, p]})

    def notes(self, tests: int, min_prob: float, fdr: float) -> list[str]:
        s = self.stats
        out = [f"{tests:,} comparisons ({len(self.labels)} groups); listed: p_diff >= "
               f"{min_prob:g} and the Benjamini-Hochberg rule at a {100 * fdr:g}% false-"
               "discovery rate over all of them (two-sided tail 2 x (1 - p_diff))"]
        if s.unobservable > 0 and s.gap is not None and s.time_kind == "datetime":
            cut = pd.Timestamp(s.observed_until - s.gap, unit="s").strftime("%Y-%m-%d")
            out.append(f"not compared: {_count(s.unobservable)} steps after {cut} (within the "
                       "inactivity gap of the end of the log: whether those journeys drop off "
                       "is not known yet)")
        elif s.unobservable > 0:
            out.append(f"not compared: {_count(s.unobservable)} steps whose fate is not known "
                       "yet (journeys still in flight)")
        return out


def _few_groups(stats: GroupedTransitions, codes: np.ndarray, source: str | None) -> str:
    where = f"{source}: " if source else ""
    found = ", ".join(repr(x) for x in group_labels(stats, codes)) or "none"
    return (f"{where}--by {stats.grouping.text}: need at least two groups with journeys whose "
            f"steps can be compared (found {found})")


def _pair_index(f_all, t_all, f, t) -> np.ndarray:
    """Index of each pair (f, t) into the distinct pairs (f_all, t_all), sorted by (f, t)."""
    span = np.int64(max(int(t_all.max()), int(t.max())) + 4)  # to-keys are >= -3
    return np.searchsorted(f_all * span + t_all + 3, f * span + t + 3)


def beta_comparison(c1, n1, c2, n2, pbar, prior: float,
                    refine_tail: float = REFINE_TAIL) -> dict[str, np.ndarray]:
    """Group rate ``c1 / n1`` against baseline ``c2 / n2`` under the Beta marginals of the
    Dirichlet rows (module docstring).

    Returns
    -------
    dict
        ``a1, b1, a2, b2`` (Beta parameters), ``rate``, ``baseline_rate``, ``diff``,
        ``p_diff`` and ``tail = 1 - p_diff`` (computed without cancellation).

    Examples
    --------
    >>> out = beta_comparison(np.array([2.0]), np.array([10.0]), np.array([30.0]),
    ...                       np.array([40.0]), np.array([0.64]), 1.0)
    >>> round(float(out["rate"][0]), 4), round(float(out["baseline_rate"][0]), 4)
    (0.24, 0.7473)
    """
    from scipy.special import digamma, ndtr, polygamma

    a1, b1 = c1 + prior * pbar, n1 - c1 + prior * (1 - pbar)
    a2, b2 = c2 + prior * pbar, n2 - c2 + prior * (1 - pbar)
    shape = np.broadcast(a1, b1, a2, b2).shape
    a1, b1, a2, b2 = (np.broadcast_to(v, shape).astype(np.float64) for v in (a1, b1, a2, b2))
    with np.errstate(invalid="ignore", divide="ignore"):
        rate, base = a1 / (a1 + b1), a2 / (a2 + b2)
        diff = rate - base
        mean = digamma(a1) - digamma(b1) - digamma(a2) + digamma(b2)
        var = (polygamma(1, a1) + polygamma(1, b1) + polygamma(1, a2) + polygamma(1, b2))
        z = np.where(diff < 0, -mean, mean) / np.sqrt(var)
    z = np.nan_to_num(z, nan=0.0)
    tail = ndtr(-z)
    ok = np.isfinite(a1 + b1 + a2 + b2) & (np.minimum(np.minimum(a1, b1),
                                                      np.minimum(a2, b2)) > 0)
    refine = ok & ((np.minimum(np.minimum(a1, b1), np.minimum(a2, b2)) < REFINE_SHAPE)
                   | ((tail > 1e-14) & (tail < refine_tail)))
    if refine.any():
        up = diff[refine] >= 0  # shown X > Y: the tail is P(X < Y); else P(Y < X)
        args = [np.where(up, x, y)[:, None] for x, y in ((a1[refine], a2[refine]),
                                                         (b1[refine], b2[refine]),
                                                         (a2[refine], a1[refine]),
                                                         (b2[refine], b1[refine]))]
        tail[refine] = np.clip(below_probability(*(a.ravel() for a in args)), 0.0, 1.0)
    return {"a1": a1, "b1": b1, "a2": a2, "b2": b2, "rate": rate, "baseline_rate": base,
            "diff": diff, "p_diff": 1.0 - tail, "tail": tail}




def below_probability(a1, b1, a2, b2, points: int = _GRID) -> np.ndarray:
    """``P(X < Y)`` for independent ``X ~ Beta(a1, b1)``, ``Y ~ Beta(a2, b2)`` (arrays of
    cells), accurate far into the tails.

    ``int f_X(x) P(Y > x) dx`` by the trapezoid rule on the log-odds axis, on the union of two
    grids of ``points`` each spanning the 1e-15 .. 1 - 1e-15 quantiles of ``X`` and of ``Y``
    (so each density is resolved on its own scale); the integrand is formed in logs (the
    regularised incomplete beta function for ``P(Y > x)``).

    Examples
    --------
    >>> float(below_probability(np.array([1.0]), np.array([1.0]), np.array([1.0]),
    ...                         np.array([1.0]))[0].round(6))
    0.5
    """
    from scipy.special import betainc, betaincinv, betaln

    a1, b1, a2, b2 = (np.atleast_1d(np.asarray(v, np.float64)) for v in (a1, b1, a2, b2))
    u = np.linspace(0.0, 1.0, points)[None, :]
    grids = []
    for a, b in ((a1, b1), (a2, b2)):
        lo = _logit(np.maximum(betaincinv(a, b, 1e-15), 1e-300))
        hi = _logit(np.minimum(betaincinv(a, b, 1 - 1e-15), 1 - 1e-16))
        grids.append(lo[:, None] + (hi - lo)[:, None] * u)
    t = np.sort(np.concatenate(grids, axis=1), axis=1)
    log_x, log_1mx = -np.logaddexp(0.0, -t), -np.logaddexp(0.0, t)
    # f_X(x) dx/dt = x^a1 (1 - x)^b1 / B(a1, b1) on the log-odds axis
    log_f = a1[:, None] * log_x + b1[:, None] * log_1mx - betaln(a1, b1)[:, None]
    with np.errstate(divide="ignore"):
        log_s = np.log(betainc(b2[:, None], a2[:, None], np.exp(log_1mx)))  # P(Y > x)
    g = np.exp(log_f + log_s)
    return np.sum((g[:, 1:] + g[:, :-1]) * np.diff(t, axis=1), axis=1) / 2


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _credible(post, min_prob: float, fdr: float, tested: np.ndarray) -> np.ndarray:
    """Listed comparisons: p_diff >= min_prob and Benjamini-Hochberg at ``fdr`` on the
    two-sided tails of all tested comparisons."""
    p = np.minimum(2 * post["tail"], 1.0)
    flat = p[tested]
    m = len(flat)
    ok = np.zeros_like(tested)
    if m == 0:
        return ok
    srt = np.sort(flat)
    below = np.flatnonzero(srt <= fdr * np.arange(1, m + 1) / m)
    if len(below) == 0:
        return ok
    cut = srt[below[-1]]
    return tested & (p <= cut) & (post["p_diff"] >= min_prob)


# ---------------------------------------------------------------------------------------------
# Findings: single cells, or runs of consecutive periods


def _findings(table: _Table, post, impact, passed, prior: float) -> pd.DataFrame:
    g, p = np.nonzero(passed)
    if table.stats.grouping.is_period and len(g):
        runs = _period_runs(table.g_codes[g], p, np.sign(post["diff"][g, p]))
    else:
        runs = [(np.array([gi]), pi) for gi, pi in zip(g, p, strict=True)]
    rows = []
    for groups, pi in runs:  # one per finding (few)
        rows.append(_finding(table, groups, pi, post, impact, prior))
    frame = pd.DataFrame(rows, columns=[*KEYS, "_a1", "_b1", "_a2", "_b2", "_key"])
    return frame


def _period_runs(periods: np.ndarray, pairs: np.ndarray, signs: np.ndarray):
    """(group indices, pair) of each run of consecutive periods with the same pair and sign."""
    order = np.lexsort((periods, signs, pairs))
    per, pa, si = periods[order], pairs[order], signs[order]
    new = np.ones(len(per), bool)
    new[1:] = (pa[1:] != pa[:-1]) | (si[1:] != si[:-1]) | (per[1:] != per[:-1] + 1)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(per))
    return [(per[a:b], int(pa[a])) for a, b in zip(starts, ends, strict=True)]


def _finding(table: _Table, groups: np.ndarray, p: int, post, impact, prior) -> dict:
    s = table.stats
    if s.grouping.is_period:
        gi = np.searchsorted(table.g_codes, groups)
        if len(gi) == 1:
            g0 = int(gi[0])
            one = {k: post[k][g0, p] for k in post}
            imp, journeys, label = impact[g0, p], table.J[g0, p], table.labels[g0]
        else:
            c, n = table.C[gi, p].sum(), table.n[gi, p].sum()
            one = {k: v[0] for k, v in table.posterior_at(c, n, p, prior).items()}
            journeys = table.J[gi, p].sum()
            pc_from, pc_to = table.p_conv
            gain = 1.0 if table.t_key[p] == -1 else pc_to[p] - pc_from[p]
            imp = one["diff"] * journeys * gain
            label = None
        start, end = period_bounds(s, groups.min(), groups.max())
        label = label or f"{start}/{end}"
    else:
        g0 = int(np.searchsorted(table.g_codes, groups[0]))
        one = {k: post[k][g0, p] for k in post}
        imp, journeys, label = impact[g0, p], table.J[g0, p], table.labels[g0]
        start = end = None
    return {"group": label, "start": start, "end": end, "kind": table.kind[p],
            "from": table.from_name[p], "to": table.to_name[p], "rate": float(one["rate"]),
            "baseline_rate": float(one["baseline_rate"]), "diff": float(one["diff"]),
            "low": np.nan, "high": np.nan, "p_diff": float(one["p_diff"]),
            "journeys": float(journeys), "impact": float(imp), "_a1": float(one["a1"]),
            "_b1": float(one["b1"]), "_a2": float(one["a2"]), "_b2": float(one["b2"]),
            "_key": (int(groups.min() - table.g_codes[0]), int(groups.max() - table.g_codes[0]),
                     int(p))}


def _rank(found: pd.DataFrame) -> pd.DataFrame:
    """Most conversions at stake first; ties by kind, from, to, start and group."""
    if not len(found):
        return found
    key = found.assign(_size=-found["impact"].abs().round(9),
                       _start=found["start"].fillna(""))
    order = key.sort_values(["_size", "kind", "from", "to", "_start", "group"],
                            kind="mergesort").index
    return found.loc[order].reset_index(drop=True)


def _intervals(found: pd.DataFrame, ci: float, seed: int) -> pd.DataFrame:
    """``low``/``high``: the ``ci`` highest-density interval of each difference, from draws
    seeded by ``seed`` and the finding itself (its groups and step), so that a finding's
    interval does not depend on which others are listed (``--top``, ``--min-prob``)."""
    from journeymodel.fit.intervals import hdi

    out = found.copy()
    low, high = np.full(len(out), np.nan), np.full(len(out), np.nan)
    for i, row in enumerate(out.to_dict(orient="records")):  # one per finding (few)
        rng = np.random.default_rng([seed, *row["_key"]])
        x = rng.beta(row["_a1"], row["_b1"], N_DRAWS)
        y = rng.beta(row["_a2"], row["_b2"], N_DRAWS)
        low[i], high[i] = hdi(x - y, ci)
    if len(out):  # the point estimate inside its interval (a skewed posterior's mean may not be)
        out["low"] = np.minimum(low, out["diff"])
        out["high"] = np.maximum(high, out["diff"])
    return out[list(KEYS)]


# ---------------------------------------------------------------------------------------------
# Names


def state_names(stats: GroupedTransitions, keys: np.ndarray) -> np.ndarray:
    """Display names of state keys: ``"email"``, ``"email > web"`` (order > 1), outcomes."""
    keys = np.asarray(keys, np.int64)
    out = np.empty(len(keys), dtype=object)
    base = len(stats.touchpoints) + 1
    pos = keys > 0
    names = np.asarray(stats.touchpoints, dtype=object)
    if pos.any():
        codes = decode_keys(keys[pos], base, stats.order)
        out[pos] = [" > ".join(names[row[row >= 0]]) for row in codes]
    for k, name in EXITS.items():
        out[keys == k] = name
    return out


def group_labels(stats: GroupedTransitions, codes: np.ndarray) -> list[str]:
    """Labels of group codes: category names, or each period's start (``2025-03-03``,
    ``2025-03`` for months, ``2025-03-03T06:00`` below a day, a number for period times)."""
    codes = np.asarray(codes, np.int64)
    g = stats.grouping
    if not g.is_period:
        return [stats.names[c] for c in codes]
    start = period_start(codes, g, stats.time_kind)
    if stats.time_kind != "datetime":
        return [str(_whole(x)) for x in start]
    stamps = pd.to_datetime(start, unit="s")
    fmt = "%Y-%m" if g.months else ("%Y-%m-%d" if g.seconds % 86400 == 0 else "%Y-%m-%dT%H:%M")
    return [t.strftime(fmt) for t in stamps]


def period_bounds(stats: GroupedTransitions, first: int, last: int):
    """(start, end) of periods ``first..last``: ISO dates (end inclusive: the day of the
    last moment), or period numbers for period times."""
    g = stats.grouping
    lo = period_start(np.array([first]), g, stats.time_kind)[0]
    hi = period_start(np.array([last + 1]), g, stats.time_kind)[0]
    if stats.time_kind != "datetime":
        return _whole(lo), _whole(hi - 1)
    return (pd.Timestamp(lo, unit="s").strftime("%Y-%m-%d"),
            pd.Timestamp(hi - 1, unit="s").strftime("%Y-%m-%d"))


def conversion_probability(stats: GroupedTransitions, f_key, t_key, count):
    """P(convert | from) and P(convert | to) of each pair, from the chain of the whole log's
    counted transitions (1 for conversion, 0 for drop-off and churn)."""
    from journeymodel.models.markov.chain import build_chain, fundamental_solve
    from journeymodel.stats.transitions import TransitionCounts

    empty = np.zeros(0)
    counts = TransitionCounts(stats.order, stats.collapse, stats.touchpoints,
                              f_key.astype(np.int64), t_key.astype(np.int64), count,
                              np.zeros(len(count)), empty.astype(np.int64), empty, empty)
    chain, _ = build_chain(counts)
    P = chain.P
    n = chain.n
    conv = n + chain.absorbing.index("conversion")
    pc = fundamental_solve(P, n, np.asarray(P[:, conv].todense()).ravel())
    pc_state = dict(zip(chain.keys.tolist(), pc.tolist(), strict=True))
    pc_state.update({-1: 1.0, -2: 0.0, -3: 0.0})
    lookup = np.vectorize(lambda k: pc_state.get(int(k), 0.0), otypes=[float])
    return lookup(f_key), lookup(t_key)


# ---------------------------------------------------------------------------------------------
# Text


def _when(row: dict, is_period: bool) -> str:
    """``3-23 Mar 2025``, ``24 Feb-16 Mar 2025``, ``2025-03`` ... (periods), or the group."""
    if not is_period:
        return str(row["group"])
    start, end = row["start"], row["end"]
    if not (isinstance(start, str) and isinstance(end, str)):
        return f"{start}" if start == end else f"{start}-{end}"
    a, b = pd.Timestamp(start), pd.Timestamp(end)
    if a == b:
        return f"{b.day} {b.strftime('%b %Y')}"
    if (a.year, a.month) == (b.year, b.month):
        return f"{a.day}-{b.day} {b.strftime('%b %Y')}"
    if a.year == b.year:
        return f"{a.day} {a.strftime('%b')}-{b.day} {b.strftime('%b %Y')}"
    return f"{a.day} {a.strftime('%b %Y')}-{b.day} {b.strftime('%b %Y')}"


def _sentence(row: dict, is_period: bool) -> str:
    """A finding in words: for a period, what fell or rose and the conversions lost or
    gained; for a segment, its rate against the others' and the conversions it makes more or
    fewer than at their rate."""
    n = round(abs(row["impact"]))
    conversions = f"{_count(n)} conversion{'s' * (n != 1)}"
    step = f"{row['from']} -> {row['to']}"
    if is_period:
        verb = "fell" if row["diff"] < 0 else "rose"
        what = "gained" if row["impact"] > 0 else "lost"
        return (f"{step} {verb} from {row['baseline_rate']:.2f} to {row['rate']:.2f} "
                f"{_between(row['start'], row['end'])}, about {conversions} {what}")
    more = "more" if row["impact"] > 0 else "fewer"
    return (f"{step} is {row['rate']:.2f} for {row['group']} against {row['baseline_rate']:.2f}"
            f" elsewhere: about {conversions} {more} than at the others' rate")


def _between(start, end) -> str:
    """``between 3 and 23 March 2025`` (dates), ``in period 5`` / ``between periods 5 and 7``."""
    if not (isinstance(start, str) and isinstance(end, str)):
        return f"in period {start}" if start == end else f"between periods {start} and {end}"
    a, b = pd.Timestamp(start), pd.Timestamp(end)
    if a == b:
        return f"on {b.day} {b.strftime('%B %Y')}"
    if (a.year, a.month) == (b.year, b.month):
        return f"between {a.day} and {b.day} {b.strftime('%B %Y')}"
    if a.year == b.year:
        return f"between {a.day} {a.strftime('%B')} and {b.day} {b.strftime('%B %Y')}"
    return f"between {a.day} {a.strftime('%B %Y')} and {b.day} {b.strftime('%B %Y')}"


def _count(x: float) -> str:
    from journeymodel.io.formatting import count

    return count(x)


def _num(x: float) -> str:
    from journeymodel.io.formatting import number

    return number(float(x), 3)


def _whole(x: float) -> int | float:
    """A period number as an int when it is whole (``7.0`` -> ``7``)."""
    return int(x) if float(x).is_integer() else float(x)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
