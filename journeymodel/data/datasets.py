"""Embedded demo data: customer journeys simulated from a known ground truth.

The generator feeds ``journeymodel demo`` and the parameter-recovery tests of every model, so its
generative story is spelled out exactly here; :class:`DemoTruth` holds every parameter it uses.

Generative story (times are continuous, the observation window is ``[start, start + days)``)

1. **Customers.** Customer ``i`` gets a persona ``p ~ Categorical(persona_share)`` and a first
   journey start ``~ Uniform(0, days)``.
2. **Journeys** are a hidden-Markov process over the stages. The first stage is drawn from
   ``start_prob``. At each step the current stage ``s`` emits one touchpoint from
   ``emission[s]``; then the journey ends with *conversion* with probability
   ``persona_exit_prob[p, s, 0] = m_p * exit_prob[s, 0]``, ends with a *leave* (no conversion)
   with probability ``exit_prob[s, 2] + (1 - m_p) * exit_prob[s, 0]``, and otherwise moves to the
   next stage by ``transmat[s]``. Persona effects act on the split of the exit only: the total
   exit probability of a stage is the same for every persona, so the touchpoint sequences of all
   personas follow one and the same 4-stage HMM. The gap after a touchpoint is lognormal with the
   stage's median ``stage_gap_hours[s]`` (clipped to 10 minutes .. 10 days).
3. **Outcomes.** A conversion row (value ``~ LogNormal(log median_p, sigma_p)``) follows the last
   touchpoint within minutes; the customer starts a new journey after a repeat delay of days to
   weeks (lognormal, median 12 days). A leave is a *dropoff*: no outcome row, and the customer is
   silent for more than ``gap_days`` (the next journey starts ``31 + Exponential(45)`` days
   later), so 30-day segmentation sees the journey end in a drop-off.
4. **Churn** (shifted-beta-geometric). A customer becomes a *subscriber* at its first conversion
   ``t0``; only subscribers churn. It draws ``theta ~ Beta(alpha_p, beta_p)`` and fails to renew
   at renewal ``K ~ Geometric(theta)`` on ``{1, 2, ...}`` (renewals at ``t0 + k * period_days``),
   so its churn clock fires at ``tau = t0 + K * period_days + Uniform(0, 1)`` days. The churn is
   written as the outcome of a journey, never in place of a conversion:

   * if ``tau`` falls before the last touchpoint of a journey (in progress, or started at
     ``tau``), that journey's leave becomes a ``churn`` row minutes after its last touchpoint;
   * if ``tau`` falls less than 29 days after the last touchpoint of a dropped-off journey, the
     churn row is written at ``tau`` and that journey ends in churn instead of a drop-off;
   * otherwise the customer's next journey starts at ``tau`` if that is earlier than planned
     (but not within 31 days of a drop-off, nor before the conversion that just happened).

   A journey that converts leaves the clock armed, so the next non-converting journey ends in
   churn. After a churn the customer never returns. The churn row is therefore at or shortly
   after ``tau``: ``floor((t_churn - t0) / period_days) == K`` for nearly every churner.
5. **Window.** Rows at or after the window end are cut: journeys running then are *censored*.

The chain has two exits (conversion, leave); a leave is labelled ``churn`` only through the churn
clock of step 4. That is why ``exit_prob[:, 1]`` (churn) is zero: per stage, a journey whose
clock has fired churns with probability ``exit_prob[s, 1] + exit_prob[s, 2]``.

``persona_conversion[p]`` is the probability that a journey of persona ``p``, run to its end,
converts, computed exactly from the absorbing chain (fundamental matrix). Every journey is drawn
from that chain, and which journeys happen depends only on earlier ones, so the conversion
frequency over journeys converges to it (Wald's identity). Counted naively over the journeys that
30-day segmentation sees complete it is about 2-3 points higher, because drop-offs in the last 30
days are censored while conversions there are not; over journeys that start 90+ days before the
end it is unbiased.

Sentiment (1..5, on about 40% of touchpoint rows) and device (a function of the channel; outcome
rows take the device of the journey's last touchpoint) carry the planted pain points below.

Planted pain points (``problems=True``, the default; ``problems=False`` removes all three, and
:attr:`DemoTruth.planted` names them):

* **Leak**: after every touchpoint of the purchase stage the journey leaves with an extra
  probability ``0.18`` (0.30 instead of 0.12: checkout loses buyers), so its touchpoints
  ``store`` and ``call`` leak. Conversion per step is unchanged. ``leak`` holds the extra leave
  per (stage, touchpoint); ``exit_prob`` and ``persona_conversion`` use the effective leave
  ``leave[s] + sum_t emission[s, t] * leak[s, t]``, exact as long as the stage chain stays
  Markov (it does: the leak is the same for every touchpoint of the stage, so the touchpoint
  sequences remain a 4-stage HMM).
* **Friction**: sentiment of ``support_chat`` is 1.2 points lower and of every touchpoint of the
  loyalty (post-purchase support) stage 0.5 lower; otherwise the mean depends mildly on the
  channel (3.6 .. 4.1).
* **Device gap**: in 35% of the journeys that end in a drop-off (and whose last two channels
  allow it) the last two touchpoints are on ``mobile`` then ``desktop``: a switch from phone to
  computer is followed by a drop-off far more often than staying on the phone. Devices are drawn
  after the journeys (given how each ended), so this changes no other part of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from journeymodel.errors import OptionError

__all__ = ["DemoData", "DemoTruth", "demo_truth", "make_demo_data", "write_sample_events"]

TOUCHPOINTS = ("web", "email", "search_ad", "social", "reviews", "call", "store", "app",
               "support_chat")
STAGES = ("awareness", "consideration", "purchase", "loyalty")
PERSONAS = ("bargain_hunter", "loyalist", "researcher")
OUTCOME_LABELS = ("conversion", "churn")
DEVICES = ("mobile", "desktop", "store")

_PERSONA_SHARE = [0.40, 0.25, 0.35]
_START_PROB = [0.75, 0.25, 0.0, 0.0]
_TRANSMAT = [[0.55, 0.35, 0.07, 0.03],
             [0.08, 0.57, 0.30, 0.05],
             [0.02, 0.16, 0.57, 0.25],
             [0.02, 0.06, 0.17, 0.75]]
#             web   email search social review call  store app   chat
_EMISSION = [[0.14, 0.08, 0.28, 0.36, 0.05, 0.02, 0.03, 0.02, 0.02],
             [0.26, 0.12, 0.06, 0.04, 0.36, 0.06, 0.05, 0.03, 0.02],
             [0.14, 0.05, 0.03, 0.02, 0.04, 0.24, 0.36, 0.08, 0.04],
             [0.06, 0.22, 0.01, 0.03, 0.02, 0.05, 0.04, 0.35, 0.22]]
_CONVERSION_EXIT = [0.01, 0.04, 0.20, 0.10]
_LEAVE_EXIT = [0.17, 0.15, 0.12, 0.16]
_CONVERSION_MULT = [0.80, 1.30, 1.00]  # normalised so that sum(share * m) == 1
_CHURN_AB = [(1.5, 8.5), (2.0, 28.0), (1.2, 12.0)]
_VALUE = [(45.0, 0.45), (85.0, 0.55), (130.0, 0.50)]  # (median, sigma) of conversion value
_STAGE_GAP_HOURS = [30.0, 20.0, 8.0, 48.0]
_GAP_SIGMA = 0.9
_CHANNEL_DEVICE = np.array([  # P(mobile, desktop, store) per channel
    [0.55, 0.45, 0], [0.60, 0.40, 0], [0.50, 0.50, 0], [0.85, 0.15, 0], [0.45, 0.55, 0],
    [0.90, 0.10, 0], [0.0, 0.0, 1.0], [1.0, 0.0, 0], [0.50, 0.50, 0]])
_CHANNEL_SENTIMENT = np.array([3.9, 3.7, 3.6, 3.8, 4.0, 3.7, 4.1, 4.0, 3.8])
# Planted pain points (module docstring)
_LEAK = ("purchase", 0.18)  # stage, extra leave probability after each touchpoint
_FRICTION_TOUCHPOINT = ("support_chat", -1.2)
_FRICTION_STAGE = ("loyalty", -0.5)
_DEVICE_GAP = ("mobile", "desktop", 0.35)  # share of drop-offs ending with this switch
_SCORED_SHARE = 0.4
_GAP_DAYS = 30.0
_PERIOD_DAYS = 30.0
_RELABEL_DAYS = 29.0  # churn clock this soon after a drop-off's last touchpoint relabels it
_RETURN_MIN_DAYS = 31.0  # silence after a drop-off is at least this long


@dataclass(frozen=True, eq=False)
class DemoTruth:
    """The known parameters behind :func:`make_demo_data` (see the module docstring).

    Attributes
    ----------
    touchpoints, stages, personas : tuple of str
        Channel names (T), stage names (S) and persona names (P).
    persona_share : ndarray, shape (P,)
    start_prob : ndarray, shape (S,)
        Stage of a journey's first touchpoint.
    transmat : ndarray, shape (S, S)
        Stage-to-stage transition probabilities given that the journey continues.
    emission : ndarray, shape (S, T)
    exit_prob : ndarray, shape (S, 3)
        Per stage, after each touchpoint, probability of ending with (conversion, churn, dropoff)
        for the reference persona (``m = 1``); the rest continues. The churn column is 0: churn
        relabels a leave through the subscriber's churn clock.
    persona_exit_prob : ndarray, shape (P, S, 3)
        Per persona: conversion scaled by ``m_p``, dropoff takes up the difference.
    conversion_multiplier : dict of str to float
        ``m_p``, normalised so that ``sum(persona_share * m) == 1``.
    persona_conversion : dict of str to float
        Probability that a journey of the persona, run to its end, converts:
        ``start_prob @ inv(I - diag(1 - e) @ transmat) @ persona_exit_prob[p, :, 0]``, ``e``
        being the total exit probability per stage.
    persona_churn : dict of str to dict
        ``{"alpha", "beta", "mean_theta", "period_days"}``: a subscriber's per-period churn
        probability is ``theta ~ Beta(alpha, beta)``; it churns at renewal
        ``K ~ Geometric(theta)``.
    persona_value : dict of str to dict
        ``{"median", "sigma"}`` of the lognormal conversion value.
    stage_gap_hours : ndarray, shape (S,)
        Median gap after a touchpoint of each stage (lognormal, sigma 0.9).
    start, end : pandas.Timestamp
        Observation window ``[start, end)``, UTC.
    leak : ndarray, shape (S, T)
        Extra leave probability after touchpoint ``t`` in stage ``s`` (the planted leak; zeros
        without problems). ``exit_prob`` already includes its average over ``emission``.
    planted : dict
        The planted pain points by kind (empty without problems): ``{"leak": (touchpoints of
        the leaking stage), "leak_stage": stage, "friction_touchpoint": touchpoint,
        "friction_stage": stage, "device_gap": (from_device, to_device)}``.
    gap_days, period_days : float
        Inactivity gap that ends a journey (30) and churn period (30).
    """

    touchpoints: tuple[str, ...]
    stages: tuple[str, ...]
    personas: tuple[str, ...]
    persona_share: np.ndarray
    start_prob: np.ndarray
    transmat: np.ndarray
    emission: np.ndarray
    exit_prob: np.ndarray
    persona_exit_prob: np.ndarray
    conversion_multiplier: dict[str, float]
    persona_conversion: dict[str, float]
    persona_churn: dict[str, dict]
    persona_value: dict[str, dict]
    stage_gap_hours: np.ndarray
    start: pd.Timestamp
    end: pd.Timestamp
    leak: np.ndarray
    planted: dict
    gap_days: float = _GAP_DAYS
    period_days: float = _PERIOD_DAYS

    @property
    def days(self) -> float:
        """Length of the observation window in days."""
        return (self.end - self.start) / pd.Timedelta(days=1)


@dataclass(frozen=True, eq=False)
class DemoData:
    """A simulated event log with its ground truth.

    Attributes
    ----------
    events : pandas.DataFrame
        Canonical event log: ``customer_id``, ``timestamp`` (UTC), ``touchpoint``, ``persona``,
        ``value``, ``sentiment``, ``device``; sorted by customer, then time.
    truth : DemoTruth
        The parameters.
    journeys : pandas.DataFrame
        One row per simulated journey: ``customer_id``, ``journey`` (0, 1, ... per customer),
        ``persona``, ``start``, ``end`` (last row written), ``n_touchpoints`` (rows written),
        ``outcome`` (as simulated: conversion, churn, dropoff, even if cut by the window end),
        ``observed_outcome`` (what 30-day segmentation of ``events`` sees, with ``censored``).
    customers : pandas.DataFrame
        One row per customer: ``customer_id``, ``persona``, ``theta``, ``renewals`` (``K``),
        ``first_conversion``, ``churn_clock`` (``tau``) and ``churn_time`` (NaT when none).
    stage : ndarray of int8, shape (n_events,)
        True stage index of each row of ``events``; -1 on outcome rows.
    """

    events: pd.DataFrame
    truth: DemoTruth
    journeys: pd.DataFrame
    customers: pd.DataFrame
    stage: np.ndarray


def _frozen(values) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    arr.flags.writeable = False
    return arr


def demo_truth(start: str | pd.Timestamp = "2025-01-01", days: int = 365, *,
               problems: bool = True) -> DemoTruth:
    """The ground truth used by :func:`make_demo_data` (no simulation).

    ``problems=False`` is the truth without the planted pain points (module docstring).

    Examples
    --------
    >>> truth = demo_truth()
    >>> truth.stages
    ('awareness', 'consideration', 'purchase', 'loyalty')
    >>> {p: round(rate, 3) for p, rate in truth.persona_conversion.items()}
    {'bargain_hunter': 0.201, 'loyalist': 0.327, 'researcher': 0.252}
    >>> truth.planted["leak"], truth.planted["device_gap"]
    (('store', 'call'), ('mobile', 'desktop'))
    """
    share = np.array(_PERSONA_SHARE)
    mult = np.array(_CONVERSION_MULT) / (share @ np.array(_CONVERSION_MULT))
    leak = np.zeros((len(STAGES), len(TOUCHPOINTS)))
    planted: dict = {}
    if problems:
        s_leak = STAGES.index(_LEAK[0])
        leak[s_leak, :] = _LEAK[1]
        top2 = np.argsort(-np.array(_EMISSION[s_leak]), kind="stable")[:2]  # store, call
        planted = {"leak": tuple(TOUCHPOINTS[i] for i in top2), "leak_stage": _LEAK[0],
                   "friction_touchpoint": _FRICTION_TOUCHPOINT[0],
                   "friction_stage": _FRICTION_STAGE[0], "device_gap": _DEVICE_GAP[:2]}
    conv = np.array(_CONVERSION_EXIT)
    leave = np.array(_LEAVE_EXIT) + (np.array(_EMISSION) * leak).sum(axis=1)
    total = conv + leave
    exit_ = np.stack([conv, np.zeros_like(conv), leave], axis=1)
    p_conv = mult[:, None] * conv
    persona_exit = np.stack([p_conv, np.zeros_like(p_conv), total - p_conv], axis=2)
    fundamental = np.linalg.inv(np.eye(len(STAGES)) - np.diag(1.0 - total) @ np.array(_TRANSMAT))
    reach = np.array(_START_PROB) @ fundamental  # expected visits to each stage
    begin = pd.Timestamp(start)
    begin = begin.tz_localize("UTC") if begin.tzinfo is None else begin.tz_convert("UTC")
    return DemoTruth(
        touchpoints=TOUCHPOINTS, stages=STAGES, personas=PERSONAS,
        persona_share=_frozen(share), start_prob=_frozen(_START_PROB),
        transmat=_frozen(_TRANSMAT), emission=_frozen(_EMISSION), exit_prob=_frozen(exit_),
        persona_exit_prob=_frozen(persona_exit),
        conversion_multiplier={p: float(m) for p, m in zip(PERSONAS, mult, strict=True)},
        persona_conversion={p: float(reach @ persona_exit[i, :, 0])
                            for i, p in enumerate(PERSONAS)},
        persona_churn={p: {"alpha": a, "beta": b, "mean_theta": a / (a + b),
                           "period_days": _PERIOD_DAYS}
                       for p, (a, b) in zip(PERSONAS, _CHURN_AB, strict=True)},
        persona_value={p: {"median": m, "sigma": s}
                       for p, (m, s) in zip(PERSONAS, _VALUE, strict=True)},
        stage_gap_hours=_frozen(_STAGE_GAP_HOURS), start=begin,
        end=begin + pd.Timedelta(days=days), leak=_frozen(leak), planted=planted,
    )


# ---------------------------------------------------------------------------------------------
# Simulation


def _categorical(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """One draw per row of ``cum`` (row-wise cumulative probabilities, shape (n, K))."""
    u = rng.random(len(cum))
    return np.minimum((u[:, None] >= cum).sum(axis=1), cum.shape[1] - 1)


@dataclass
class _Paths:
    """Touchpoints of a batch of journeys (flat, in step order) and each journey's ending."""

    journey: np.ndarray  # (n_steps,) index into the batch
    stage: np.ndarray
    touchpoint: np.ndarray
    time: np.ndarray
    converted: np.ndarray  # (n_journeys,) bool
    last_time: np.ndarray  # time of the last touchpoint
    last_step: np.ndarray  # flat index of the last touchpoint


def _simulate_paths(rng, truth: DemoTruth, persona: np.ndarray, start: np.ndarray) -> _Paths:
    """Run the stage chain of every journey of a batch at once, one step per iteration."""
    n = len(start)
    cum_start = np.cumsum(truth.start_prob)[None, :]
    cum_trans, cum_emit = np.cumsum(truth.transmat, 1), np.cumsum(truth.emission, 1)
    conv = truth.persona_exit_prob[:, :, 0]
    total = truth.persona_exit_prob[0].sum(axis=1)
    base_total = total - (truth.emission * truth.leak).sum(axis=1)  # leak added per touchpoint
    log_median = np.log(truth.stage_gap_hours / 24.0)
    stage = _categorical(rng, np.repeat(cum_start, n, 0))
    time = start.astype(np.float64).copy()
    converted, last_time = np.zeros(n, bool), np.zeros(n)
    last_step = np.zeros(n, np.int64)
    live = np.arange(n)
    parts, done = [], 0
    while live.size:
        s = stage[live]
        tp = _categorical(rng, cum_emit[s])
        parts.append((live, s, tp, time[live]))
        u = rng.random(live.size)
        ends = u < base_total[s] + truth.leak[s, tp]
        gone = live[ends]
        converted[gone] = u[ends] < conv[persona[gone], s[ends]]
        last_time[gone] = time[gone]
        last_step[gone] = done + np.flatnonzero(ends)
        done += live.size
        live, s = live[~ends], s[~ends]
        gap = np.exp(log_median[s] + _GAP_SIGMA * rng.standard_normal(live.size))
        time[live] += np.clip(gap, 10 / 1440, 10.0)
        stage[live] = _categorical(rng, cum_trans[s])
    cat = [np.concatenate(c) for c in zip(*parts, strict=True)]
    return _Paths(cat[0].astype(np.int64), cat[1].astype(np.int8), cat[2].astype(np.int16),
                  cat[3], converted, last_time, last_step)


@dataclass
class _Customers:
    """Per-customer state carried from one journey round to the next (times in days)."""

    persona: np.ndarray
    theta: np.ndarray
    renewals: np.ndarray
    next_start: np.ndarray
    first_conversion: np.ndarray
    clock: np.ndarray  # churn clock tau; inf until the first conversion
    churn_time: np.ndarray
    alive: np.ndarray
    n_journeys: np.ndarray


def _draw_customers(rng, truth: DemoTruth, n: int) -> _Customers:
    persona = rng.choice(len(truth.personas), size=n, p=truth.persona_share)
    ab = np.array([[c["alpha"], c["beta"]] for c in truth.persona_churn.values()])
    theta = rng.beta(ab[persona, 0], ab[persona, 1])
    renewals = rng.geometric(np.clip(theta, 1e-12, 1.0))
    return _Customers(
        persona=persona, theta=theta, renewals=renewals,
        next_start=rng.uniform(0.0, truth.days, n), first_conversion=np.full(n, np.nan),
        clock=np.full(n, np.inf), churn_time=np.full(n, np.nan), alive=np.ones(n, bool),
        n_journeys=np.zeros(n, np.int64))


def _end_journeys(rng, truth: DemoTruth, c: _Customers, who: np.ndarray, paths: _Paths):
    """Outcome rows, churn and next start of one round of journeys (see module docstring)."""
    m = len(who)
    last = paths.last_time
    conv = paths.converted
    out_time = np.full(m, np.nan)
    out_time[conv] = last[conv] + (2 + rng.exponential(20.0, m)[conv]) / 1440
    first = conv & np.isnan(c.first_conversion[who])
    c.first_conversion[who[first]] = out_time[first]
    jitter = rng.uniform(0.0, 1.0, m)
    c.clock[who[first]] = (out_time[first] + c.renewals[who[first]] * truth.period_days
                           + jitter[first])
    clock = c.clock[who]
    armed = ~conv & (clock <= last)
    soon = ~conv & ~armed & (clock < last + _RELABEL_DAYS)
    out_time[armed] = last[armed] + (5 + rng.exponential(120.0, m)[armed]) / 1440
    out_time[soon] = np.maximum(clock[soon], last[soon] + 1 / 1440)
    churn = armed | soon
    c.churn_time[who[churn]] = out_time[churn]
    c.alive[who[churn]] = False
    repeat = np.exp(np.log(12.0) + 0.8 * rng.standard_normal(m))
    back = last + _RETURN_MIN_DAYS + rng.exponential(45.0, m)
    earliest = np.where(conv, out_time + 1 / 24 + rng.exponential(1.0, m), last + _RETURN_MIN_DAYS)
    natural = np.where(conv, out_time + np.maximum(repeat, 1.0), back)
    c.next_start[who] = np.where(clock < natural, np.maximum(clock, earliest), natural)
    c.n_journeys[who] += 1
    return out_time, np.where(conv, 0, np.where(churn, 1, 2)).astype(np.int8)


def _simulate(rng, truth: DemoTruth, n: int):
    """All journeys of all customers, one journey per customer per round."""
    c = _draw_customers(rng, truth, n)
    steps, journeys = [], []
    n_steps = n_journeys = 0
    while True:
        who = np.flatnonzero(c.alive & (c.next_start < truth.days))
        if who.size == 0:
            break
        start, number = c.next_start[who].copy(), c.n_journeys[who].copy()
        paths = _simulate_paths(rng, truth, c.persona[who], start)
        out_time, outcome = _end_journeys(rng, truth, c, who, paths)
        steps.append((who[paths.journey], paths.journey + n_journeys, paths.stage,
                      paths.touchpoint, paths.time))
        journeys.append((who, number, start, paths.last_step + n_steps, outcome, out_time))
        n_steps += len(paths.journey)
        n_journeys += len(who)
    steps = [np.concatenate(a) for a in zip(*steps, strict=True)]
    journeys = [np.concatenate(a) for a in zip(*journeys, strict=True)]
    return c, steps, journeys


# ---------------------------------------------------------------------------------------------
# Row attributes: the hooks where later issues plant pain points


def _device(rng, touchpoint: np.ndarray) -> np.ndarray:
    """Device code (index into ``DEVICES``) of touchpoint rows, drawn from the channel's mix."""
    return _categorical(rng, np.cumsum(_CHANNEL_DEVICE, axis=1)[touchpoint]).astype(np.int8)


def _sentiment(rng, truth: DemoTruth, touchpoint: np.ndarray, stage: np.ndarray) -> np.ndarray:
    """CSAT-like score 1..5 on about 40% of touchpoint rows, NaN elsewhere.

    The mean depends mildly on the channel, and with the planted friction it drops on
    ``support_chat`` and in the loyalty stage (module docstring).
    """
    mean = _CHANNEL_SENTIMENT[touchpoint].copy()
    if truth.planted:
        mean[touchpoint == truth.touchpoints.index(_FRICTION_TOUCHPOINT[0])] += (
            _FRICTION_TOUCHPOINT[1])
        mean[stage == truth.stages.index(_FRICTION_STAGE[0])] += _FRICTION_STAGE[1]
    score = np.clip(np.rint(mean + 0.9 * rng.standard_normal(len(touchpoint))), 1.0, 5.0)
    return np.where(rng.random(len(touchpoint)) < _SCORED_SHARE, score, np.nan)


def _plant_device_gap(rng, truth: DemoTruth, device, steps, journeys) -> None:
    """The planted device gap: the last two touchpoints of a share of the drop-offs go on
    mobile then desktop, where their channels allow it (in place)."""
    s_journey, s_tp, s_time = steps[1], steps[3], steps[4]
    j_last_step, j_outcome = journeys[3], journeys[4]
    u = rng.random(len(j_outcome))  # drawn either way: the stream does not depend on problems
    if not truth.planted:
        return
    order = np.lexsort((s_time, s_journey))  # steps journey by journey, in time order
    pos = np.empty_like(order)
    pos[order] = np.arange(len(order))
    last = j_last_step
    prev = order[np.maximum(pos[last] - 1, 0)]
    src, dst = (DEVICES.index(d) for d in _DEVICE_GAP[:2])
    pick = ((j_outcome == 2) & (u < _DEVICE_GAP[2]) & (pos[last] > 0)
            & (s_journey[prev] == s_journey[last])
            & (_CHANNEL_DEVICE[s_tp[prev], src] > 0) & (_CHANNEL_DEVICE[s_tp[last], dst] > 0))
    device[prev[pick]] = src
    device[last[pick]] = dst


def _timestamps(truth: DemoTruth, days: np.ndarray) -> pd.DatetimeIndex:
    """Times in days since the window start -> UTC timestamps, whole seconds (NaN -> NaT)."""
    delta = pd.to_timedelta(np.round(np.asarray(days, np.float64) * 86400.0), unit="s")
    return (truth.start + delta).as_unit("ns")


# ---------------------------------------------------------------------------------------------
# Assembly


def _event_table(rng, truth: DemoTruth, c: _Customers, steps, journeys, ids):
    """The canonical event log and the true stage of each row, sorted by customer and time."""
    s_cust, _, s_stage, s_tp, s_time = steps
    j_cust, _, _, j_last_step, j_outcome, j_out_time = journeys
    device = _device(rng, s_tp)
    _plant_device_gap(rng, truth, device, steps, journeys)
    sentiment = _sentiment(rng, truth, s_tp, s_stage)
    keep = s_time < truth.days
    out = (j_outcome < 2) & (j_out_time < truth.days)
    persona_out = c.persona[j_cust[out]]
    median = np.array([v["median"] for v in truth.persona_value.values()])
    sigma = np.array([v["sigma"] for v in truth.persona_value.values()])
    value = np.round(rng.lognormal(np.log(median[persona_out]), sigma[persona_out]), 2)
    n_tp = len(truth.touchpoints)
    cust = np.concatenate([s_cust[keep], j_cust[out]])
    time = np.concatenate([s_time[keep], j_out_time[out]])
    label = np.concatenate([s_tp[keep], n_tp + j_outcome[out]])
    stage = np.concatenate([s_stage[keep], np.full(out.sum(), -1, np.int8)])
    dev = np.concatenate([device[keep], device[j_last_step[out]]])
    val = np.concatenate([np.full(keep.sum(), np.nan), np.where(j_outcome[out] == 0, value,
                                                                np.nan)])
    sent = np.concatenate([sentiment[keep], np.full(out.sum(), np.nan)])
    order = np.lexsort((time, cust))
    labels = np.array(truth.touchpoints + OUTCOME_LABELS, dtype=object)
    events = pd.DataFrame({
        "customer_id": ids[cust[order]],
        "timestamp": _timestamps(truth, time[order]),
        "touchpoint": labels[label[order]],
        "persona": np.array(truth.personas, dtype=object)[c.persona[cust[order]]],
        "value": val[order],
        "sentiment": sent[order],
        "device": np.array(DEVICES, dtype=object)[dev[order]],
    })
    return events, stage[order]


def _journey_table(truth: DemoTruth, c: _Customers, steps, journeys, ids, observed_until):
    """One row per simulated journey, with the outcome 30-day segmentation observes."""
    s_journey, s_time = steps[1], steps[4]
    j_cust, number, start, _, outcome, out_time = journeys
    n = len(j_cust)
    keep = s_time < truth.days
    written = np.bincount(s_journey[keep], minlength=n)
    last_written = np.full(n, -np.inf)  # every journey has its first touchpoint in the window
    np.maximum.at(last_written, s_journey[keep], s_time[keep])
    emitted = (outcome < 2) & (out_time < truth.days)
    quiet = observed_until - np.round(last_written * 86400.0) > truth.gap_days * 86400.0
    names = np.array(["conversion", "churn", "dropoff", "censored"], dtype=object)
    observed = np.where(emitted, outcome, np.where((outcome == 2) & quiet, 2, 3))
    return pd.DataFrame({
        "customer_id": ids[j_cust],
        "journey": number,
        "persona": np.array(truth.personas, dtype=object)[c.persona[j_cust]],
        "start": _timestamps(truth, start),
        "end": _timestamps(truth, np.where(emitted, out_time, last_written)),
        "n_touchpoints": written,
        "outcome": names[outcome],
        "observed_outcome": names[observed],
    }).sort_values(["customer_id", "journey"], ignore_index=True)


def _customer_table(truth: DemoTruth, c: _Customers, ids) -> pd.DataFrame:
    def within(t):
        return _timestamps(truth, np.where(t < truth.days, t, np.nan))

    return pd.DataFrame({
        "customer_id": ids,
        "persona": np.array(truth.personas, dtype=object)[c.persona],
        "theta": c.theta,
        "renewals": c.renewals,
        "first_conversion": within(c.first_conversion),
        "churn_clock": within(c.clock),
        "churn_time": within(c.churn_time),
    })


# ---------------------------------------------------------------------------------------------
# Public API


def make_demo_data(n_customers: int = 2000, *, seed: int | np.random.Generator = 0,
                   start: str | pd.Timestamp = "2025-01-01", days: int = 365,
                   problems: bool = True) -> DemoData:
    """Simulate an event log of non-linear customer journeys from a known ground truth.

    Parameters
    ----------
    n_customers : int
        Number of customers; each may have several journeys.
    seed : int or numpy.random.Generator
        Randomness; the same seed gives an identical result.
    start : str or pandas.Timestamp
        Start of the observation window (UTC when naive).
    days : int
        Length of the observation window; rows at or after ``start + days`` are cut.
    problems : bool
        Plant the pain points of the module docstring (a leak, friction, a device gap);
        ``False`` gives the same story without them.

    Returns
    -------
    DemoData
        ``events`` (the canonical event log), ``truth`` (:class:`DemoTruth`) and the realised
        latent quantities (``journeys``, ``customers``, ``stage``). The generative story is in
        the module docstring of :mod:`journeymodel.data.datasets`.

    Raises
    ------
    OptionError
        If ``n_customers`` or ``days`` is not positive.

    Examples
    --------
    >>> demo = make_demo_data(200, seed=1)
    >>> list(demo.events.columns)
    ['customer_id', 'timestamp', 'touchpoint', 'persona', 'value', 'sentiment', 'device']
    >>> demo.events["customer_id"].nunique() == 200
    True
    >>> sorted(demo.truth.persona_conversion) == sorted(demo.truth.personas)
    True
    """
    if int(n_customers) < 1:
        raise OptionError(f"n_customers must be at least 1 (got {n_customers})")
    if not days > 0:
        raise OptionError(f"days must be positive (got {days})")
    rng = np.random.default_rng(seed)
    truth = demo_truth(start, days, problems=problems)
    width = max(6, len(str(int(n_customers) - 1)))
    ids = np.array([f"C{i:0{width}d}" for i in range(int(n_customers))], dtype=object)
    c, steps, journeys = _simulate(rng, truth, int(n_customers))
    events, stage = _event_table(rng, truth, c, steps, journeys, ids)
    observed_until = (events["timestamp"].max() - truth.start).total_seconds()
    return DemoData(events=events, truth=truth,
                    journeys=_journey_table(truth, c, steps, journeys, ids, observed_until),
                    customers=_customer_table(truth, c, ids), stage=stage)


#: Most customers :func:`write_sample_events` generates: the whole log is built in memory first
#: (about 4.5 KB and 0.1 ms per customer, measured at 200,000 customers: 0.9 GB, 22 s).
MAX_SAMPLE_CUSTOMERS = 1_000_000


def write_sample_events(path: str | Path, n_customers: int = 2000, *,
                        seed: int | np.random.Generator = 0, problems: bool = True) -> int:
    """Write the event log of :func:`make_demo_data` to ``.csv`` or ``.parquet``, at most
    :data:`MAX_SAMPLE_CUSTOMERS` customers.

    Parameters
    ----------
    path : str or Path
        Output file; the suffix (``.csv``, ``.parquet`` or ``.pq``) picks the format.
    n_customers, seed, problems
        As in :func:`make_demo_data`.

    Returns
    -------
    int
        Number of rows written.

    Raises
    ------
    OptionError
        If ``n_customers`` is above :data:`MAX_SAMPLE_CUSTOMERS`, the suffix is not one of
        ``.csv``, ``.parquet``, ``.pq``, or the file cannot be written there (a folder, a
        missing folder, no permission); all checked before any work. The file is written
        atomically: an error or an interrupt leaves no partial file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     rows = write_sample_events(pathlib.Path(tmp) / "events.csv", 50, seed=0)
    >>> rows > 50
    True
    """
    from journeymodel.io.outputs import check_target, write_frame

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise OptionError(f"{path}: output must end in .csv or .parquet (got {suffix!r})")
    if n_customers > MAX_SAMPLE_CUSTOMERS:
        raise OptionError(sample_size_message(n_customers, "n_customers"))
    check_target(path, "sample event log")  # before the work, not after it
    events = make_demo_data(n_customers, seed=seed, problems=problems).events
    write_frame(events, path)  # atomically: a temporary file renamed into place
    return len(events)


def sample_size_message(n_customers: int, option: str) -> str:
    """Why ``n_customers`` sample customers are refused (named by ``option``)."""
    return (f"{option} must be at most {MAX_SAMPLE_CUSTOMERS:,} (got {n_customers:,}): the "
            "sample log is built in memory, about 4.5 KB per customer")
