"""Pain points: where journeys leak, where customers feel friction, where switches lose them.

Three kinds, each ranked by what it costs and given with its evidence (an interval and the
number of journeys behind it):

**Leaks** (``kind`` ``state``: a Markov state; ``stage``: a stage of a stages model, its passes
the expected touchpoints in it; ``transition``: a channel pair ``a > b``, the first touchpoint
coming from ``(start)``). A step's drop-off probability ``d`` (the share of passes
after which the journey drops off) is compared with the baseline ``d0`` of all steps. Its cost is
the expected conversions lost::

    cost = passes * (d - d0) * c

where ``c`` is the probability that a journey that goes on from there converts (for a state
``P(conversion) / (1 - d)`` from the absorbing chain; for a transition the share of the pairs
not followed by a drop-off whose journey converted). The interval comes from the Beta posterior
of ``d`` (Jeffreys prior), ``p_worse`` is ``P(d > d0)``.

A leak is a drop-off, never a churn: a churn is an ending the customer declares (a cancellation,
recorded as its own outcome and modelled by the churn model), and the step before it is most
often the channel where customers go to cancel (a call, the store), not where the journey failed
them. Transitions, stages and gaps count drop-offs only too, so every leak is measured alike.
The report's Markov hot spots are these leaks (``report.sections.markov.hotspots``).

**Friction** (``kind`` ``touchpoint`` or ``stage``): mean sentiment (-1..1) below the average of
all scored events, listed only where the whole interval is below the average. Cost is the
sentiment deficit ``average - mean`` with its interval; unscored events are not counted.

**Gaps** (``kind`` ``device`` or ``channel``): a switch ``a > b`` (``a != b``) followed by a
drop-off more often than staying on ``a`` (``a > a``). Both drop-off rates get Beta-Binomial
posteriors (uniform prior); ``p_worse`` is the posterior probability that the switch is worse
and the cost, expected conversions lost, ``n_switch * (d_switch - d_stay) * c``, has its interval
from the same posterior draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from journeymodel.analysis.experience import START
from journeymodel.errors import ModelFileError, OptionError

KINDS = ("leaks", "friction", "gaps")
#: Posterior draws behind each gap's cost interval and ``p_worse``.
N_DRAWS = 4000
#: Leaks and gaps are listed where P(worse than the baseline) is at least this (default).
MIN_PROB = 0.9


@dataclass
class PainPoints:
    """Ranked pain points; each item is a dict with ``kind``, ``name``, ``cost``,
    ``cost_low``, ``cost_high``, ``journeys`` and kind-specific evidence."""

    leaks: list[dict[str, Any]] = field(default_factory=list)
    friction: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        return {k: [_plain(item) for item in getattr(self, k)] for k in KINDS}

    def result(self, ci: float = 0.94):
        """As a :class:`~journeymodel.models.base.Result`: one table per kind, indexed by the
        item's name (the JSON keeps every field)."""
        import pandas as pd

        from journeymodel.models.base import Result

        pct = f"{ci:.0%}"

        def interval(i, digits):
            return f"{i['cost_low']:.{digits}f} .. {i['cost_high']:.{digits}f}"

        rows = {
            "leaks": [{"name": i["name"], "kind": i["kind"], "lost": i["cost"],
                       pct: interval(i, 1), "passes": round(i["journeys"]),
                       "drop-off": i["drop_rate"], "P(worse)": i["p_worse"]}
                      for i in self.leaks],
            "friction": [{"name": i["name"], "kind": i["kind"], "sentiment": i["sentiment"],
                          "below average": i["cost"], pct: interval(i, 3),
                          "journeys": i["journeys"],
                          "scored events": round(i["scored_events"])}
                         for i in self.friction],
            "gaps": [{"switch": i["name"], "kind": i["kind"], "lost": i["cost"],
                      pct: interval(i, 1), "journeys": round(i["journeys"]),
                      "drop-off": i["drop_rate"],
                      "staying": i["stay_drop_rate"], "P(worse)": i["p_worse"]}
                     for i in self.gaps],
        }
        titles = {"leaks": "Leaks: where journeys that could convert are lost (lost: expected "
                           "conversions; drop-off per pass, baselines below)",
                  "friction": "Friction: sentiment (-1..1) below the average",
                  "gaps": "Channel and device gaps: switches followed by drop-off (lost: "
                          "expected conversions)"}
        tables = []
        for k in KINDS:
            key = "switch" if k == "gaps" else "name"
            frame = (pd.DataFrame(rows[k]) if rows[k] else pd.DataFrame(
                {key: [], "kind": []})).set_index(key)
            tables.append((titles[k], frame))
        kinds = {"lost": "count", pct: "text", "passes": "count", "journeys": "count",
                 "scored events": "count", "drop-off": "probability",
                 "staying": "probability", "P(worse)": "probability", "sentiment": "number",
                 "below average": "number"}
        return Result(json=self.to_json(), tables=tables, notes=list(self.notes), kinds=kinds)


def _plain(item: dict) -> dict:
    out = {}
    for k, v in item.items():
        if isinstance(v, (np.floating, float)):
            out[k] = None if not np.isfinite(v) else float(v)
        elif isinstance(v, np.integer):
            out[k] = int(v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# Leaks


def _beta_interval(a, b, ci):
    """Equal-tailed ``ci`` interval of Beta(a, b)."""
    from scipy import stats

    return stats.beta.ppf(0.5 - ci / 2, a, b), stats.beta.ppf(0.5 + ci / 2, a, b)


def _beta_evidence(k, n, baseline, ci):
    """Jeffreys Beta posterior of a drop-off rate: interval ends and P(rate > baseline)."""
    from scipy import stats

    a, b = k + 0.5, n - k + 0.5
    return *_beta_interval(a, b, ci), stats.beta.sf(baseline, a, b)


def drop_interval(k, n, ci: float = 0.94) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed ``ci`` interval of a drop-off rate with ``k`` drop-offs in ``n`` arrivals
    under the gaps' uniform prior (the Beta(k + 1, n - k + 1) posterior).

    Examples
    --------
    >>> [round(float(v), 4) for v in drop_interval(0, 1, 0.5)]  # 1 - (1 - x)**2 = 0.25, 0.75
    [0.134, 0.5]
    """
    k, n = np.asarray(k, float), np.asarray(n, float)
    return _beta_interval(k + 1.0, n - k + 1.0, ci)


def _leak_items(kind, names, passes, dropped, cont_conv, ci):
    """Items for steps with ``passes`` (n), ``dropped`` (k) and conversion-if-continue ``c``."""
    passes, dropped = np.asarray(passes, float), np.asarray(dropped, float)
    ok = passes > 0
    baseline = dropped[ok].sum() / passes[ok].sum() if ok.any() else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        d = dropped / passes
    c = np.asarray(cont_conv, float)
    fallback = np.nansum(c * passes * (1 - d)) / np.nansum(passes * (1 - d) * np.isfinite(c))
    c = np.where(np.isfinite(c), c, fallback)
    lo, hi, p_worse = _beta_evidence(dropped, passes, baseline, ci)
    pick = np.flatnonzero(ok & (d > baseline))
    # the cost's point estimate uses the observed rate, kept inside its interval: where every
    # pass dropped off (k = n) the Jeffreys interval ends below 1, and a cost above its own
    # interval would be shown
    d_in = np.clip(d, lo, hi)
    items = [{"kind": kind, "name": str(names[i]),
              "cost": passes[i] * (d_in[i] - baseline) * c[i],
              "cost_low": passes[i] * (lo[i] - baseline) * c[i],
              "cost_high": passes[i] * (hi[i] - baseline) * c[i],
              "journeys": passes[i], "drop_rate": d[i], "baseline": baseline,
              "p_worse": p_worse[i], "conversion_if_continued": c[i]} for i in pick]
    return items, baseline


def state_leaks(model, ci: float = 0.94) -> tuple[list[dict], float]:
    """Leaks of a Markov model's states (absorbing-chain ``P(conversion)``).

    Passes and drop-offs are the counts the chain was fitted from: the observed ones plus the
    in-flight journeys' expected ones (their last state's chance of dropping off given the time
    already spent there, issue 17), so a state where customers go quiet is not under-counted on
    a log cut mid-stream."""
    chain, counts = model.chain_, getattr(model, "expected_counts_", model.counts_)
    if "dropoff" not in chain.absorbing:
        return [], float("nan")
    code = -(chain.absorbing.index("dropoff") + 1)
    fi = np.searchsorted(chain.keys, counts.from_key)
    passes = np.bincount(fi, weights=counts.count, minlength=chain.n)
    drop = counts.to_key == code
    dropped = np.bincount(fi[drop], weights=counts.count[drop], minlength=chain.n)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = model.p_conversion_ / (1.0 - dropped / passes)
    passes[0] = 0.0  # the start state is not a step
    c[~np.isfinite(c) | (dropped >= passes)] = np.nan
    return _leak_items("state", model.state_labels(), passes, dropped, c, ci)


def stage_leaks(model, ci: float = 0.94) -> tuple[list[dict], float]:
    """Leaks of a stages model's stages: expected touchpoints in the stage as passes, the
    fitted drop-off exit as rate, P(conversion | going on) from the absorbing stage chain."""
    from journeymodel.models.stages.fit import absorption
    from journeymodel.stats.sequences import EXITS

    exp = model.experience_
    if exp is None or "stage_events" not in exp:  # None: fitted from statistics alone
        return [], float("nan")
    passes = exp["stage_events"].values
    d = model.exitprob_[:, EXITS.index("dropoff")]
    v_conv = absorption(model.stage_fit())[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(d < 1, v_conv / (1 - d), np.nan)
    return _leak_items("stage", list(model.stage_names_), passes, passes * d, c, ci)


def transition_leaks(exp, ci: float = 0.94) -> tuple[list[dict], float]:
    """Leaks of channel pairs ``a > b`` (the arrival at ``b`` from ``a``)."""
    n, k, conv = (exp[v].values for v in ("pair_n", "pair_dropped", "pair_converted"))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(n > k, conv / (n - k), np.nan)
    names = [f"{a} > {b}" for a, b in zip(exp["pair_from"].values, exp["pair_to"].values,
                                           strict=True)]
    return _leak_items("transition", names, n, k, c, ci)


# ---------------------------------------------------------------------------------------------
# Friction


def friction(exp, stage_labels: list[str] | None = None) -> list[dict]:
    """Touchpoints (and stages) whose whole sentiment interval lies below the average."""
    if not exp.attrs.get("has_sentiment", 0):
        return []
    avg = float(exp.attrs["sentiment_mean"])
    groups = [("touchpoint", exp["channel"].values, "tp")]
    if "stage_label" in exp.coords:
        labels = stage_labels or [str(s) for s in exp["stage_label"].values]
        groups.append(("stage", labels, "stage"))
    items = []
    for kind, names, p in groups:
        mean, low, high = (exp[f"{p}_{q}"].values for q in ("mean", "low", "high"))
        journeys, scored = exp[f"{p}_journeys"].values, exp[f"{p}_scored"].values
        for i in np.flatnonzero(np.isfinite(high) & (high < avg)):
            items.append({"kind": kind, "name": str(names[i]), "cost": avg - mean[i],
                          "cost_low": avg - high[i], "cost_high": avg - low[i],
                          "journeys": int(journeys[i]), "scored_events": scored[i],
                          "sentiment": mean[i], "average": avg})
    return items


# ---------------------------------------------------------------------------------------------
# Gaps


def _gap_items(kind, src, dst, n, k, conv, rng, ci):
    src, dst = np.asarray(src).astype(str), np.asarray(dst).astype(str)
    stay = {s: i for i, (s, t) in enumerate(zip(src, dst, strict=True)) if s == t}
    switch = np.array([i for i in range(len(src)) if src[i] != dst[i] and src[i] in stay
                       and src[i] != START], dtype=np.int64)
    if switch.size == 0:
        return []
    base = np.array([stay[src[i]] for i in switch], dtype=np.int64)
    n, k, conv = (np.asarray(a, float) for a in (n, k, conv))
    d_sw, d_st = k[switch] / n[switch], k[base] / n[base]
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(n[switch] > k[switch], conv[switch] / (n[switch] - k[switch]), np.nan)
    overall = np.nansum(conv) / max(np.nansum(n - k), 1e-300)
    c = np.where(np.isfinite(c), c, overall)
    draws_sw = rng.beta(k[switch] + 1, n[switch] - k[switch] + 1, size=(N_DRAWS, len(switch)))
    draws_st = rng.beta(k[base] + 1, n[base] - k[base] + 1, size=(N_DRAWS, len(switch)))
    p_worse = (draws_sw > draws_st).mean(axis=0)
    lost = n[switch] * (draws_sw - draws_st) * c
    lo, hi = np.quantile(lost, [0.5 - ci / 2, 0.5 + ci / 2], axis=0)
    items = []
    for j in np.flatnonzero(d_sw > d_st):
        i = switch[j]
        items.append({"kind": kind, "name": f"{src[i]} > {dst[i]}",
                      "cost": n[i] * (d_sw[j] - d_st[j]) * c[j], "cost_low": lo[j],
                      "cost_high": hi[j], "journeys": n[i], "drop_rate": d_sw[j],
                      "stay_drop_rate": d_st[j], "stay_journeys": n[base[j]],
                      "p_worse": p_worse[j]})
    return items


def gaps(exp, *, seed: int = 0, ci: float = 0.94) -> list[dict]:
    """Device and channel switches followed by drop-off more often than staying."""
    rng = np.random.default_rng(seed)
    items = _gap_items("device", exp["dpair_from"].values, exp["dpair_to"].values,
                       exp["dpair_n"].values, exp["dpair_dropped"].values,
                       exp["dpair_converted"].values, rng, ci)
    items += _gap_items("channel", exp["pair_from"].values, exp["pair_to"].values,
                        exp["pair_n"].values, exp["pair_dropped"].values,
                        exp["pair_converted"].values, rng, ci)
    return items


# ---------------------------------------------------------------------------------------------
# All together


def check_model(model, source: str | None = None) -> None:
    """Raise unless ``model`` can give pain points; ``source`` (a file) prefixes the message.

    Raises
    ------
    OptionError
        A model of another type than markov or stages.
    ModelFileError
        A model saved before pain points existed (no ``experience`` data).
    """
    where = f"{source}: " if source else ""
    if model.model_type not in ("markov", "stages"):
        raise OptionError(f"{where}pain points come from a markov or stages model "
                          f"(got a {model.model_type} model)")
    if getattr(model, "experience_", None) is None:
        raise ModelFileError(f"{where}this {model.model_type} model has no experience data "
                             "(saved before pain points existed); fit it again")


def _counts_note(model) -> str:
    """One line: what a model's pain points count, and how that relates to ``describe``."""
    oc = model.journeys_.outcome_counts or {}
    journeys = sum(oc.values()) if oc else model.journeys_.n_journeys
    what = ("passes are visits to a state or pair" if model.model_type == "markov"
            else "passes are expected touchpoints in a stage or visits to a pair")
    return (f"counts ({model.model_type} model): {journeys:,.0f} journeys, "
            f"{oc.get('conversion', 0):,.0f} conversions, as `describe` counts them; {what}, "
            "so a journey that returns to a step passes it again")


def rank(items: list[dict], *, top: int | None = None,
         min_prob: float = MIN_PROB) -> list[dict]:
    """``items`` costliest first, those with ``p_worse`` below ``min_prob`` left out, an item
    found twice (same kind and name) listed once, the first ``top`` kept (None: all)."""
    seen, kept = set(), []
    for item in sorted(items, key=lambda x: -x["cost"]):
        if item.get("p_worse", 1.0) < min_prob:
            continue
        if (item["kind"], item["name"]) not in seen:
            seen.add((item["kind"], item["name"]))
            kept.append(item)
    return kept[:top] if top is not None else kept


def find_pain_points(models, *, top: int | None = 10, seed: int = 0, ci: float = 0.94,
                     min_prob: float = MIN_PROB) -> PainPoints:
    """Leaks, friction and gaps from fitted Markov and/or stages models, ranked by cost.

    Parameters
    ----------
    models : model or list of models
        :class:`~journeymodel.models.markov.model.MarkovJourneyModel` (leaks of its states) and/or
        :class:`~journeymodel.models.stages.model.StageModel` (friction of its stages); either gives
        transition leaks, touchpoint friction and gaps. An item found by two models is listed
        once.
    top : int or None
        Items kept per kind (None: all).
    seed : int
        Seed of the posterior draws of the gaps' costs.
    ci : float
        Interval mass.
    min_prob : float
        Leaks and gaps are listed only where the posterior probability that they are worse
        than their baseline (``p_worse``) is at least this (friction: where the interval
        excludes the average).

    Raises
    ------
    OptionError
        A model of another type, ``top`` < 1, ``ci`` outside (0, 1) or ``min_prob`` outside
        [0, 1).
    ModelFileError
        A model saved before pain points existed (no ``experience`` data).
    """
    if not isinstance(models, (list, tuple)):
        models = [models]
    if top is not None and top < 1:
        raise OptionError(f"--top must be at least 1 (got {top})")
    if not 0 < ci < 1:
        raise OptionError(f"--ci must be between 0 and 1 (got {ci})")
    if not 0 <= min_prob < 1:
        raise OptionError(f"--min-prob must be in [0, 1) (got {min_prob})")
    out = PainPoints()
    notes: list[str] = []
    for m in models:
        check_model(m)
        exp = m.experience_
        notes.append(_counts_note(m))
        if m.model_type == "markov":
            items, base = state_leaks(m, ci)
            out.leaks += items
            notes.append(f"state drop-off baseline (order {m.order_}): {base:.3f} per step")
        else:
            items, base = stage_leaks(m, ci)
            out.leaks += items
            notes.append(f"stage drop-off baseline: {base:.3f} per step")
        items, base = transition_leaks(exp, ci)
        out.leaks += items
        notes.append(f"transition drop-off baseline: {base:.3f} per step")
        labels = list(getattr(m, "stage_names_", [])) or None
        out.friction += friction(exp, labels)
        out.gaps += gaps(exp, seed=seed, ci=ci)
        if exp.attrs["has_sentiment"]:
            notes.append(f"average sentiment {exp.attrs['sentiment_mean']:+.3f} (-1..1) over "
                         f"{int(exp.attrs['scored_events']):,} scored of "
                         f"{int(exp.attrs['events']):,} events; unscored events are left out")
        else:
            notes.append("no sentiment in the data: no friction")
        if not exp.attrs["has_device"]:
            notes.append("no device in the data: channel gaps only")
    for kind in KINDS:
        setattr(out, kind, rank(getattr(out, kind), top=top, min_prob=min_prob))
    out.notes = list(dict.fromkeys(notes)) + [
        f"costs and intervals ({ci:.0%}): leaks and gaps in expected conversions lost, "
        "friction in sentiment points below the average",
        f"leaks and gaps listed where P(worse than baseline) >= {min_prob:g}"]
    return out
