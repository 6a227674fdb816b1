"""Event logs simulated from the churn models' own generative stories (known truth).

Used by parameter-recovery tests and by ``benchmarks/bench_churn.py``. Each function returns a
canonical event log (``customer_id``, ``timestamp`` UTC, ``touchpoint``, ``persona``) and the end
of observation to pass as ``--observed-until``. Loops run over periods or transaction rounds,
never over customers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from journeymodel.models.churn.data import DAY, UNIT_SECONDS

START = pd.Timestamp("2020-01-01", tz="UTC")


def _frame(cust: np.ndarray, persona: np.ndarray, names: list[str], seconds: np.ndarray,
           label: np.ndarray) -> pd.DataFrame:
    order = np.lexsort((seconds, cust))
    return pd.DataFrame({
        "customer_id": np.char.add("c", cust[order].astype(str)),
        "timestamp": START + pd.to_timedelta(seconds[order], unit="s"),
        "touchpoint": label[order],
        "persona": np.asarray(names, dtype=object)[persona[order]],
    })


def _personas(params: Mapping[str, Mapping[str, float]], n: int | Mapping[str, int]):
    names = list(params)
    sizes = [n[p] if isinstance(n, Mapping) else n for p in names]
    persona = np.repeat(np.arange(len(names)), sizes)
    return names, persona


def simulate_sbg(params: Mapping[str, Mapping[str, float]], n: int | Mapping[str, int],
                 periods: int, *, unit: str = "Y", seed: int | np.random.Generator = 0):
    """Cohorts that all sign up at the start, churn per shifted-beta-geometric, observed for
    ``periods`` periods.

    Parameters
    ----------
    params : {persona: {"alpha": float, "beta": float}}
    n : int or {persona: int}
        Customers per persona.

    Returns
    -------
    events : DataFrame
        A ``signup`` row per customer, a ``churn`` row half a day after the renewal it missed.
    observed_until : str
    """
    rng = np.random.default_rng(seed)
    names, persona = _personas(params, n)
    a = np.array([params[p]["alpha"] for p in names])[persona]
    b = np.array([params[p]["beta"] for p in names])[persona]
    theta = rng.beta(a, b)
    lifetime = rng.geometric(theta)  # T in 1, 2, ...
    length = UNIT_SECONDS[unit]
    cust = np.arange(len(persona))
    signup = rng.uniform(0, 3600.0, len(cust))
    churned = lifetime <= periods
    churn_at = signup[churned] + lifetime[churned] * length + 0.5 * DAY
    seconds = np.concatenate([signup, churn_at])
    label = np.concatenate([np.full(len(cust), "signup"), np.full(churned.sum(), "churn")])
    df = _frame(np.concatenate([cust, cust[churned]]),
                np.concatenate([persona, persona[churned]]), names, seconds, label)
    return df, str((START + pd.Timedelta(seconds=periods * length + 3600.0)).isoformat())


def simulate_weibull(params: Mapping[str, Mapping[str, float]], n: int | Mapping[str, int],
                     horizon: float, *, unit: str = "M", seed: int | np.random.Generator = 0):
    """Customers signing up uniformly over the first half of ``horizon`` time units, with
    Weibull(shape, scale) lifetimes, observed until ``horizon``."""
    rng = np.random.default_rng(seed)
    names, persona = _personas(params, n)
    k = np.array([params[p]["shape"] for p in names])[persona]
    lam = np.array([params[p]["scale"] for p in names])[persona]
    length = UNIT_SECONDS[unit]
    cust = np.arange(len(persona))
    signup = rng.uniform(0, horizon / 2, len(cust))
    life = lam * rng.weibull(k)
    churned = signup + life < horizon
    seconds = np.concatenate([signup, signup[churned] + life[churned]]) * length
    label = np.concatenate([np.full(len(cust), "signup"), np.full(churned.sum(), "churn")])
    df = _frame(np.concatenate([cust, cust[churned]]),
                np.concatenate([persona, persona[churned]]), names, seconds, label)
    return df, str((START + pd.Timedelta(seconds=horizon * length)).isoformat())


def simulate_bgnbd(params: Mapping[str, Mapping[str, float]], n: int | Mapping[str, int],
                   weeks: float = 39.0, *, acquisition_weeks: float = 12.0,
                   seed: int | np.random.Generator = 0):
    """BG/NBD customers (rates per week): first purchase uniformly in the first
    ``acquisition_weeks``, Poisson purchases at rate ``lambda ~ Gamma(r, alpha)``, drop-out
    after each repeat purchase with probability ``p ~ Beta(a, b)``; observed until ``weeks``.

    Returns
    -------
    events : DataFrame
        Per purchase a ``visit`` row one minute before its ``conversion`` row (event logs need
        touchpoints).
    observed_until : str
    """
    rng = np.random.default_rng(seed)
    names, persona, cust, weeks_at = _bgnbd_purchases(params, n, weeks, acquisition_weeks, rng)
    seconds = weeks_at * 7 * DAY + 60.0
    cust2 = np.concatenate([cust, cust])
    label = np.repeat(np.array(["visit", "conversion"], dtype=object), len(cust))
    df = _frame(cust2, persona[cust2], names, np.concatenate([seconds - 60.0, seconds]), label)
    return df, str((START + pd.Timedelta(weeks=weeks)).isoformat())


def _bgnbd_purchases(params, n, weeks: float, acquisition_weeks: float,
                     rng: np.random.Generator):
    """Persona names, each customer's persona, and every purchase's customer and time (weeks)."""
    names, persona = _personas(params, n)
    get = lambda key: np.array([params[p][key] for p in names])[persona]  # noqa: E731
    lam = rng.gamma(get("r"), 1.0 / get("alpha"))
    p = rng.beta(get("a"), get("b"))
    first = rng.uniform(0, acquisition_weeks, len(persona))
    cust_parts, time_parts = [np.arange(len(persona))], [first]
    now, who = first, np.arange(len(persona))
    alive = np.ones(len(who), bool)  # drop-out can follow repeat purchases only (FHL 2005)
    while who.size:
        who, now = who[alive], now[alive]
        now = now + rng.exponential(1.0 / lam[who])
        inside = now < weeks
        who, now = who[inside], now[inside]
        cust_parts.append(who)
        time_parts.append(now)
        alive = rng.random(len(who)) >= p[who]
    return names, persona, np.concatenate(cust_parts), np.concatenate(time_parts)


def simulate_transactions(params: Mapping[str, Mapping[str, float]],
                          n: int | Mapping[str, int], weeks: float = 39.0, *,
                          acquisition_weeks: float = 12.0,
                          seed: int | np.random.Generator = 0):
    """A plain transaction log from BG/NBD and Gamma-Gamma (Fader, Hardie & Lee 2005).

    Purchases as :func:`simulate_bgnbd` (``r``, ``alpha``, ``a``, ``b`` per persona, rates per
    week); when a persona's parameters also hold ``p``, ``q``, ``v``, each customer's mean
    spend scale ``nu ~ Gamma(q, rate v)`` and each purchase's amount ``~ Gamma(p, rate nu)``
    (otherwise amounts are 1).

    Returns
    -------
    events : DataFrame
        One row per purchase: ``customer_id``, ``timestamp``, ``touchpoint`` (always
        ``"purchase"``), ``amount``, ``persona``; no touchpoint rows.
    observed_until : str
    """
    rng = np.random.default_rng(seed)
    names, persona, cust, weeks_at = _bgnbd_purchases(params, n, weeks, acquisition_weeks, rng)
    amount = np.ones(len(cust))
    if all({"p", "q", "v"} <= set(params[k]) for k in names):
        get = lambda key: np.array([params[k][key] for k in names])[persona]  # noqa: E731
        nu = rng.gamma(get("q"), 1.0 / get("v"))
        amount = rng.gamma(get("p")[cust], 1.0 / nu[cust])
    seconds = weeks_at * 7 * DAY
    df = _frame(cust, persona[cust], names, seconds,
                np.full(len(cust), "purchase", dtype=object))
    order = np.lexsort((seconds, cust))
    df.insert(3, "amount", np.round(amount[order], 2))
    return df, str((START + pd.Timedelta(weeks=weeks)).isoformat())
