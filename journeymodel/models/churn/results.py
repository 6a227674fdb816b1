"""Results of a fitted :class:`~journeymodel.models.churn.model.ChurnModel`: summary, retention
curves, forecasts (all with posterior means and highest-density intervals)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from journeymodel.fit.intervals import hdi
from journeymodel.models.base import Result
from journeymodel.models.churn import likelihoods as lk
from journeymodel.models.churn.data import compress
from journeymodel.models.churn.graph import PARAMS

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from journeymodel.models.churn.model import ChurnModel

#: Posterior draws used for forecasts (a seeded random subset of all draws).
FORECAST_DRAWS = 400
CUSTOMER_FORECAST_DRAWS = 200
_CHUNK = 20_000


def _band(draws: np.ndarray, prob: float) -> dict[str, np.ndarray]:
    low, high = hdi(draws, prob)
    return {"median": np.median(draws, axis=0), "mean": draws.mean(axis=0), "low": low,
            "high": high}


# ---------------------------------------------------------------------------------------------
# retention curves


def curves(model: ChurnModel, periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Survival and hazard draws, each shape (n_draws, n_personas, periods), t = 1..periods."""
    t = np.arange(periods + 1, dtype=np.float64)
    if model.model == "sbg":
        a, b = (model.draws_of(n)[..., None] for n in ("alpha", "beta"))
        surv = np.exp(lk.sbg_log_survival(a, b, t))
        hazard = lk.sbg_hazard(a, b, t[1:])
    elif model.model == "weibull":
        k, lam = (model.draws_of(n)[..., None] for n in ("shape", "scale"))
        surv = np.exp(lk.weibull_log_survival(k, lam, t))
        hazard = 1.0 - surv[..., 1:] / surv[..., :-1]
    else:  # per repeat transaction: P(alive after n), drop-out probability at the n-th
        a, b = (model.draws_of(n)[..., None] for n in ("a", "b"))
        surv = np.exp(lk.bgnbd_log_survival(a, b, t))
        hazard = a / (a + b + t[1:] - 1)
    return surv[..., 1:], hazard


def retention(model: ChurnModel, periods: int) -> xr.Dataset:
    import xarray as xr

    surv, hazard = curves(model, periods)
    dims = ("persona", "period")
    coords = {"persona": list(model.personas_), "period": np.arange(1, periods + 1)}
    data = {}
    for name, draws in (("survival", surv), ("hazard", hazard)):
        for stat, values in _band(draws, model.hdi_prob).items():
            data[f"{name}_{stat}"] = (dims, values)
    return xr.Dataset(data, coords=coords, attrs={"axis": _axis(model)})


def _axis(model: ChurnModel) -> str:
    if model.model == "bgnbd":
        return "repeat transactions"
    return f"periods of 1 {model.info_['time_unit']}"


# ---------------------------------------------------------------------------------------------
# summary


#: A positive parameter whose HDI spans more than this factor (high / low) is reported as
#: weakly identified: the data bound it only loosely, so its value says little on its own.
WEAK_RATIO = 10.0
#: Key figures that are probabilities (printed with three decimals), by how their names start.
PROBABILITY_FIGURES = ("churn at", "retention after", "drop-out chance")
#: One year in each time unit: the horizon of the key figures.
YEAR = {"D": 365.0, "W": 52.0, "M": 12.0, "Y": 1.0}


def summary(model: ChurnModel, periods: int = 12) -> Result:
    """Key figures first (what people act on: retention, lifetime, expected transactions), then
    the curves, then the model's parameters (posterior median and HDI), and one line naming
    the parameters the data identify only weakly."""
    personas = summary_params(model)
    ret = retention(model, periods)
    diag = model.diagnostics_
    pct = f"{round(model.hdi_prob * 100)}%"
    shown = min(periods, 12)
    axis_name = "after n repeat transactions" if model.model == "bgnbd" else "period"
    key_title, key_table, key_json = key_figures(model)
    tables = [(f"{key_title} (posterior median [{pct} HDI])", key_table),
              (f"{_survival_title(model)} (median [{pct} HDI])",
               _band_table(ret, "survival", shown, axis_name)),
              (f"{_hazard_title(model)} (median [{pct} HDI])",
               _band_table(ret, "hazard", shown, axis_name)),
              (f"Model parameters {model.model} per persona (median [{pct} HDI])",
               _params_table(model, personas))]
    if model.spend:
        tables.append((f"Spend per repeat transaction, Gamma-Gamma, per persona (mean [{pct} "
                       "HDI])", _spend_table(model, personas)))
    verdict = "converged" if diag.ok else "did NOT converge"
    notes = [*_weak_note(model, personas),
             f"diagnostics: {verdict} (R-hat max {diag.r_hat_max:.3f}, bulk ESS min "
             f"{diag.ess_bulk_min:,.0f}, {diag.divergences} divergences; {diag.chains} chains x "
             f"{diag.draws:,} draws)", f"time unit: {_unit_text(model)}",
             _pooling_note(model), *_spend_notes(model), *model.info_.get("notes", [])]
    curve_json = {p: {stat: [round(float(v), 6) for v in ret[f"survival_{stat}"].values[i]]
                      for stat in ("median", "mean", "low", "high")}
                  for i, p in enumerate(model.personas_)}
    json_out = {"model": model.model, "time_unit": model.info_["time_unit"],
                "origin": model.info_["origin"],
                "pooling": model.info_.get("pooling", "partial"), "key_figures": key_json,
                "personas": personas,
                "weakly_identified": weakly_identified(model, personas),
                "diagnostics": {**diag.to_dict(), "converged": diag.ok},
                "retention": {"axis": ret.attrs["axis"], "curves": curve_json},
                "timing": {k: model.info_.get(k) for k in ("sampler", "compile_seconds",
                                                           "sample_seconds")},
                "notes": list(model.info_.get("notes", []))}
    if model.spend:
        json_out["spend"] = dict(model.info_["spend"])
    kinds = {col: "text" for _, frame in tables for col in frame.columns}
    kinds.update({"customers": "count", "churned": "count", "repeat_buyers": "count"})
    return Result(json=json_out, tables=tables, notes=notes, kinds=kinds)


def summary_params(model: ChurnModel) -> dict[str, Any]:
    """``{persona: {"params": {param: {"median", "mean", "hdi_low", "hdi_high"}},
    "customers": n}}`` (report the median with the HDI: the mean of a weakly identified
    parameter can lie outside its own interval)."""
    ds = model.params()
    out = {}
    for i, persona in enumerate(model.personas_):
        params = {}
        for name in PARAMS[model.model]:
            cell = ds.sel(param=name).isel(persona=i)
            params[name] = {k: round(float(cell[k]), 6)
                            for k in ("median", "mean", "hdi_low", "hdi_high")}
        out[persona] = {"params": params, "customers": int(model.customers_[i]),
                        ("churned" if model.model != "bgnbd" else "repeat_buyers"):
                        int(model.events_[i])}
    if model.spend:
        gg = model.params("spend")
        for i, persona in enumerate(model.personas_):
            out[persona]["spend_params"] = {
                name: {k: round(float(gg.sel(param=name).isel(persona=i)[k]), 6)
                       for k in ("mean", "hdi_low", "hdi_high")} for name in PARAMS["gg"]}
    return out


#: What each pooling means, for the summary's line.
POOLING_TEXT = {"partial": "partial (hierarchical: personas borrow strength from each other)",
                "none": "none (each persona fitted on its own data)",
                "complete": "complete (one population: every persona gets the parameters of "
                            "all customers together)"}


def _pooling_note(model: ChurnModel) -> str:
    if len(model.personas_) == 1:
        return "pooling: one persona (nothing to pool)"
    return f"pooling: {POOLING_TEXT[model.info_.get('pooling', 'partial')]}"


def _spend_notes(model: ChurnModel) -> list[str]:
    if not model.spend:
        return []
    sp = model.info_["spend"]
    corr = sp["correlation"]
    verdict = ("beyond +-0.3: the model's independence assumption is doubtful"
               if abs(corr) > 0.3 else "the model assumes independence")
    return [f"spend model: {sp['customers']:,} repeat buyers with a positive spend; "
            f"correlation of spend per transaction with frequency {corr:.2f} ({verdict})"]


def _spend_table(model: ChurnModel, personas: dict[str, Any]) -> pd.DataFrame:
    """Per persona: mean spend per transaction ``p v / (q - 1)`` and ``p``, ``q``, ``v``."""
    from journeymodel.io.formatting import number

    p, q, v = (model.draws_of(n) for n in PARAMS["gg"])
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_spend = np.where(q > 1, p * v / (q - 1), np.inf)
    low, high = hdi(mean_spend, model.hdi_prob)
    rows = []
    for i, (name, entry) in enumerate(personas.items()):
        m = float(np.mean(mean_spend[:, i]))
        row = {"persona": name, "mean spend per transaction": (
            f"{number(m, 3)} [{number(low[i], 3)}, {number(high[i], 3)}]"
            if np.isfinite(m) else "unbounded (q <= 1 in some draws)")}
        for k in PARAMS["gg"]:
            cell = entry["spend_params"][k]
            row[k] = _iv(cell["mean"], cell["hdi_low"], cell["hdi_high"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("persona")


def _iv(median: float, low: float, high: float, kind: str = "number") -> str:
    """``median [low, high]`` for a person: probabilities with three decimals, other numbers
    with three significant digits and thousands separators; never scientific notation."""
    from journeymodel.io.formatting import number, probability

    fmt = probability if kind == "probability" else (lambda v: number(v, 3))
    return f"{fmt(median)} [{fmt(low)}, {fmt(high)}]"


def _params_table(model: ChurnModel, personas: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for name, entry in personas.items():
        row: dict[str, Any] = {"persona": name, "customers": entry["customers"]}
        row.update({k: v for k, v in entry.items()
                    if k not in ("params", "customers", "spend_params")})
        for p in PARAMS[model.model]:
            cell = entry["params"][p]
            row[p] = _iv(cell["median"], cell["hdi_low"], cell["hdi_high"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("persona")


def key_figure_draws(model: ChurnModel) -> tuple[str, dict[str, np.ndarray]]:
    """The quantities people act on, as posterior draws (n_draws, n_personas) by column name.

    sbg: churn at the first renewal ``alpha / (alpha + beta)`` and retention after a year;
    weibull: median lifetime ``scale * log(2) ** (1 / shape)`` and retention after a year;
    bgnbd: repeat transactions per time unit while active ``r / alpha``, drop-out chance after
    a transaction ``a / (a + b)`` and a new customer's expected repeat transactions in a year
    (FHL 2005 eq. 9). A year is 12 periods for logs of plain period numbers.
    """
    unit = model.info_["time_unit"]
    year = YEAR.get(unit, 12.0)
    span = f"{year:g} {unit}"
    if model.model == "sbg":
        a, b = (model.draws_of(n) for n in ("alpha", "beta"))
        return "Key figures per persona", {
            "churn at first renewal": a / (a + b),
            f"retention after {span}": np.exp(lk.sbg_log_survival(a, b, np.floor(year)))}
    if model.model == "weibull":
        k, lam = (model.draws_of(n) for n in ("shape", "scale"))
        return "Key figures per persona", {
            f"median lifetime ({unit})": lam * np.log(2.0) ** (1.0 / k),
            f"retention after {span}": np.exp(lk.weibull_log_survival(k, lam, year))}
    r, al, a, b = (model.draws_of(n) for n in ("r", "alpha", "a", "b"))
    with np.errstate(all="ignore"):
        expected = lk.bgnbd_expected_new(r, al, a, b, year)
    return "Key figures per persona", {
        f"repeat transactions per {unit} while active": r / al,
        "drop-out chance after a transaction": a / (a + b),
        f"expected repeat transactions of a new customer in {span}": expected}


def key_figures(model: ChurnModel) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    """Title, printed table and JSON of :func:`key_figure_draws` (median and HDI)."""
    title, draws = key_figure_draws(model)
    table: dict[str, list[str]] = {}
    out: dict[str, dict[str, Any]] = {p: {} for p in model.personas_}
    for name, values in draws.items():
        low, high = hdi(values, model.hdi_prob)
        median = np.median(values, axis=0)
        kind = "probability" if name.startswith(PROBABILITY_FIGURES) else "number"
        table[name] = [_iv(m, lo, hi, kind) for m, lo, hi in zip(median, low, high,
                                                                 strict=True)]
        for i, p in enumerate(model.personas_):
            out[p][name] = {"median": round(float(median[i]), 6),
                            "hdi_low": round(float(low[i]), 6),
                            "hdi_high": round(float(high[i]), 6)}
    frame = pd.DataFrame(table, index=pd.Index(list(model.personas_), name="persona"))
    return title, frame, out


def weakly_identified(model: ChurnModel, personas: dict[str, Any]) -> dict[str, list[str]]:
    """``{param: [persona, ...]}`` where the HDI spans more than :data:`WEAK_RATIO`."""
    weak: dict[str, list[str]] = {}
    for name in PARAMS[model.model]:
        for persona, entry in personas.items():
            cell = entry["params"][name]
            low, high = cell["hdi_low"], cell["hdi_high"]
            if not (low > 0 and high / low <= WEAK_RATIO):
                weak.setdefault(name, []).append(persona)
    return weak


def _weak_note(model: ChurnModel, personas: dict[str, Any]) -> list[str]:
    weak = weakly_identified(model, personas)
    if not weak:
        return []
    ratio = max(personas[p]["params"][n]["hdi_high"] / max(personas[p]["params"][n]["hdi_low"],
                                                          1e-300)
                for n, ps in weak.items() for p in ps)
    which = "; ".join(f"{n} ({', '.join(ps)})" for n, ps in weak.items())
    return [f"weakly identified by these data (interval wider than a factor of "
            f"{WEAK_RATIO:g}, up to {ratio:,.0f}): {which}; read the key figures and curves, "
            "which the data pin down, rather than these parameters"]


def _survival_title(model: ChurnModel) -> str:
    if model.model == "bgnbd":
        return "P(still active) after n repeat transactions"
    return f"Retention: share of customers still active after t {model.info_['time_unit']}"


def _hazard_title(model: ChurnModel) -> str:
    if model.model == "bgnbd":
        return "Drop-out probability at the n-th repeat transaction"
    return "Churn hazard: P(churn in period t | active at its start)"


def _unit_text(model: ChurnModel) -> str:
    unit = model.info_["time_unit"]
    if unit == "period":
        return "the log's own periods"
    days = {"D": "1 day", "W": "7 days", "M": "30.4375 days", "Y": "365.25 days"}[unit]
    return f"{unit} = {days}; lifetimes start at the {model.info_['origin'].replace('_', ' ')}"


def _band_table(ret: xr.Dataset, name: str, shown: int, axis_name: str) -> pd.DataFrame:
    mid, low, high = (ret[f"{name}_{s}"].values[:, :shown]
                      for s in ("median", "low", "high"))
    cols = {}
    for i, p in enumerate(ret["persona"].values):
        cols[str(p)] = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
                        for m, lo, hi in zip(mid[i], low[i], high[i], strict=True)]
    frame = pd.DataFrame(cols, index=pd.Index(np.arange(1, shown + 1), name=axis_name))
    return frame


# ---------------------------------------------------------------------------------------------
# forecasts


def forecast(model: ChurnModel, horizon: float, seed: Any, discount_rate: float = 0.0
             ) -> Result:
    if model.model == "bgnbd":
        return _forecast_bgnbd(model, horizon, seed, discount_rate)
    return _forecast_survivors(model, horizon, seed)


def survivor_draws(model: ChurnModel, horizon: float, seed: Any) -> np.ndarray:
    """Expected survivors after ``horizon`` among active customers, (n_draws, n_personas)."""
    c = model.cells_
    p, age, n = c["cell_persona"], c["cell_age"], c["cell_count"]
    names = ("alpha", "beta") if model.model == "sbg" else ("shape", "scale")
    d1, d2 = (model.draws_of(name, FORECAST_DRAWS, seed) for name in names)
    out = np.zeros_like(d1)
    for lo in range(0, len(p), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        a, b = d1[:, p[sl]], d2[:, p[sl]]
        if model.model == "sbg":
            now, later = (np.maximum(np.rint(s) - 1, 0) for s in (age[sl], age[sl] + horizon))
            keep = np.exp(lk.sbg_log_survival(a, b, later) - lk.sbg_log_survival(a, b, now))
        else:
            keep = np.exp(lk.weibull_log_survival(a, b, age[sl] + horizon)
                          - lk.weibull_log_survival(a, b, age[sl]))
        for j in np.unique(p[sl]):
            m = p[sl] == j
            out[:, j] += keep[:, m] @ n[sl][m]
    return out


def _forecast_survivors(model: ChurnModel, horizon: float, seed: Any) -> Result:
    draws = survivor_draws(model, horizon, seed)
    active = np.bincount(model.cells_["cell_persona"], weights=model.cells_["cell_count"],
                         minlength=len(model.personas_))
    total = draws.sum(axis=1, keepdims=True)
    band = _band(np.concatenate([draws, total], axis=1), model.hdi_prob)
    names = [*model.personas_, "all"]
    active_all = np.append(active, active.sum())
    frame = pd.DataFrame({
        "persona": names, "active_now": active_all.astype(np.int64),
        "survivors_mean": band["mean"], "survivors_low": band["low"],
        "survivors_high": band["high"], "churned_mean": active_all - band["mean"],
        "retention_mean": np.divide(band["mean"], active_all, out=np.zeros(len(names)),
                                    where=active_all > 0)})
    frame.insert(1, "horizon", horizon)
    unit = model.info_["time_unit"]
    pct = f"{round(model.hdi_prob * 100)}%"
    json_out = {"model": model.model, "horizon": horizon, "time_unit": unit,
                "personas": {r["persona"]: {k: _num(v) for k, v in r.items() if k != "persona"}
                             for r in frame.to_dict("records")}}
    title = (f"Survivors {horizon:g} {unit} after the end of observation among customers "
             f"active now (mean, {pct} HDI)")
    shown = pd.DataFrame({
        "active now": frame["active_now"].to_numpy(),
        "survivors": [f"{m:,.1f} [{lo:,.1f}, {hi:,.1f}]" for m, lo, hi in zip(
            band["mean"], band["low"], band["high"], strict=True)],
        "retention": frame["retention_mean"].to_numpy()}, index=pd.Index(names, name="persona"))
    return Result(json=json_out, tables=[(title, shown)], frame=frame)


def _num(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def bgnbd_customer_draws(model: ChurnModel, horizon: float, seed: Any):
    """P(alive) and expected transactions in the horizon per stored customer row,
    each (n_draws, n_customers); computed once per distinct (persona, x, t_x, T)."""
    c = model.cells_
    (p, x, t_x, T), _, inv = compress(c["cell_persona"], c["x"], c["t_x"], c["T"])
    p = p.astype(np.int64)
    r, al, a, b = (model.draws_of(n, CUSTOMER_FORECAST_DRAWS, seed)
                   for n in ("r", "alpha", "a", "b"))
    alive = np.empty((len(r), len(p)))
    expected = np.empty_like(alive)
    for lo in range(0, len(p), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        args = (r[:, p[sl]], al[:, p[sl]], a[:, p[sl]], b[:, p[sl]], x[sl], t_x[sl], T[sl])
        alive[:, sl] = lk.bgnbd_p_alive(*args)
        expected[:, sl] = lk.bgnbd_expected_future(*args, horizon)
    return alive[:, inv], expected[:, inv]


def _forecast_bgnbd(model: ChurnModel, horizon: float, seed: Any, rate: float = 0.0
                    ) -> Result:
    from journeymodel.models.churn import value as cv

    value = (cv.customer_value(model, horizon, rate, CUSTOMER_FORECAST_DRAWS, seed)
             if model.spend else None)
    alive, expected = bgnbd_customer_draws(model, horizon, seed)
    persona = model.cells_["cell_persona"].astype(np.int64)
    n_p = len(model.personas_)
    totals = np.stack([expected[:, persona == j].sum(axis=1) for j in range(n_p)], axis=1)
    band = _band(np.concatenate([totals, totals.sum(1, keepdims=True)], axis=1),
                 model.hdi_prob)
    counts = np.bincount(persona, minlength=n_p)
    p_alive = alive.mean(axis=0)
    alive_share = np.bincount(persona, weights=p_alive, minlength=n_p)
    per = pd.DataFrame({
        "persona": [*model.personas_, "all"], "customers": np.append(counts, counts.sum()),
        "expected_alive": np.append(alive_share, alive_share.sum()),
        "transactions_mean": band["mean"], "transactions_low": band["low"],
        "transactions_high": band["high"]})
    unit = model.info_["time_unit"]
    pct = f"{round(model.hdi_prob * 100)}%"
    shown = pd.DataFrame({
        "customers": per["customers"].to_numpy(), "expected alive": per["expected_alive"],
        "transactions": [f"{m:,.1f} [{lo:,.1f}, {hi:,.1f}]" for m, lo, hi in zip(
            band["mean"], band["low"], band["high"], strict=True)]},
        index=pd.Index(per["persona"], name="persona"))
    tables = [(f"Expected transactions in the next {horizon:g} {unit} per persona "
               f"(mean, {pct} HDI)", shown)]
    json_out = {"model": "bgnbd", "horizon": horizon, "time_unit": unit,
                "personas": {r["persona"]: {k: _num(v) for k, v in r.items() if k != "persona"}
                             for r in per.to_dict("records")}}
    frame = per.assign(horizon=horizon)
    notes = []
    if value is not None:
        per, frame = _add_clv(model, value, per, tables, json_out, horizon, rate)
    if model.customer_ids_ is not None:
        low, high = hdi(expected, model.hdi_prob)
        frame = pd.DataFrame({
            "customer_id": model.customer_ids_,
            "persona": np.asarray(model.personas_, dtype=object)[persona],
            "x": model.cells_["x"], "t_x": model.cells_["t_x"], "T": model.cells_["T"],
            "p_alive": p_alive, "expected_transactions": expected.mean(axis=0),
            "expected_low": low, "expected_high": high})
        frame.insert(2, "horizon", horizon)
        frame = _customer_columns(model, frame, alive, value)
        json_out["customers"] = frame.to_dict("records")
        top = frame.nlargest(10, "expected_transactions").set_index("customer_id")
        top = top[["persona", "x", "t_x", "T", "p_alive", "expected_transactions"]].rename(
            columns={"expected_transactions": "expected"})
        tables.append((f"Top customers by expected transactions ({len(frame):,} in the forecast "
                       "table; -o FILE writes them all)", top))
    else:
        notes.append("the model was saved without customer ids (keep_customers=False): "
                     "forecasts are per persona only")
    return Result(json=json_out, tables=tables, frame=frame, notes=notes)


def _add_clv(model: ChurnModel, value, per: pd.DataFrame, tables: list, json_out: dict,
             horizon: float, rate: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CLV per customer of each persona (and of all) into the per-persona frame, a table and
    the JSON (``personas.<p>.clv.{mean, low, high}``); in place for ``tables`` and
    ``json_out``."""
    from journeymodel.io.formatting import number

    n_p = len(model.personas_)
    draws = value.per_persona(n_p)
    counts = np.bincount(value.persona, weights=value.weight, minlength=n_p)
    overall = draws @ counts / max(counts.sum(), 1.0)
    b = _band(np.concatenate([draws, overall[:, None]], axis=1), model.hdi_prob)
    per = per.assign(clv_mean=b["mean"], clv_low=b["low"], clv_high=b["high"])
    for i, name in enumerate(per["persona"]):
        json_out["personas"][name]["clv"] = {k: round(float(b[k][i]), 6)
                                             for k in ("mean", "low", "high")}
        for k in ("clv_mean", "clv_low", "clv_high"):
            json_out["personas"][name].pop(k, None)
    json_out["discount_rate"] = rate
    unit = model.info_["time_unit"]
    pct = f"{round(model.hdi_prob * 100)}%"
    shown = pd.DataFrame({
        "customers": per["customers"].to_numpy(),
        "CLV per customer": [f"{number(m, 3)} [{number(lo, 3)}, {number(hi, 3)}]"
                             for m, lo, hi in zip(b["mean"], b["low"], b["high"],
                                                  strict=True)],
        "total": [number(m * n, 3) for m, n in zip(b["mean"], per["customers"],
                                                   strict=True)]},
        index=pd.Index(per["persona"], name="persona"))
    disc = f", discounted at {rate * 100:g}% a year" if rate else ", undiscounted"
    tables.append((f"Customer lifetime value over the next {horizon:g} {unit}{disc} "
                   f"(mean, {pct} HDI)", shown))
    return per, per.assign(horizon=horizon)


def _customer_columns(model: ChurnModel, frame: pd.DataFrame, alive: np.ndarray,
                      value) -> pd.DataFrame:
    """P(alive)'s interval, and with a spend model expected spend and CLV (mean, low, high),
    per stored customer."""
    from journeymodel.models.churn.value import band

    low, high = hdi(alive, model.hdi_prob)
    at = frame.columns.get_loc("p_alive") + 1
    frame.insert(at, "p_alive_low", low)
    frame.insert(at + 1, "p_alive_high", high)
    if value is None:
        return frame
    for name, draws in (("expected_spend", value.spend), ("clv", value.clv)):
        mean, lo, hi = band(draws, model.hdi_prob)
        inv = value.inverse
        frame[name], frame[f"{name}_low"], frame[f"{name}_high"] = mean[inv], lo[inv], hi[inv]
    return frame
