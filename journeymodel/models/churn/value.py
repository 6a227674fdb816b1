"""Customer lifetime value from a BG/NBD + Gamma-Gamma posterior (numpy, per posterior draw).

The value of a customer over the next ``H`` time units is the expected number of transactions
in each step of the horizon times the expected value per transaction, discounted at the end of
the step (the convention of lifetimes' ``customer_lifetime_value``, which steps by months):

``CLV = E[Z | x, m] * sum_k (E[Y(t_k)] - E[Y(t_{k-1})]) / (1 + R) ** (t_k / year)``

with ``E[Y(t) | x, t_x, T]`` the BG/NBD expectation (FHL 2005a eq. 10), ``E[Z | x, m]`` the
Gamma-Gamma expected spend per transaction (FHL 2005b eq. 5; the population mean ``p v / (q -
1)`` for customers without a repeat purchase) and ``R`` the yearly discount rate. The steps are
``n = min(ceil(H), MAX_STEPS)`` equal steps ``t_k = k H / n`` (one per time unit up to
:data:`MAX_STEPS`: with a yearly rate of 10% the discount moves by under 1% within a step of a
month, while every step costs one hypergeometric function per customer and draw). Without
discounting the sum telescopes to ``E[Y(H)]`` and one step is exact.

Everything is computed once per distinct customer summary (persona, x, t_x, T, m) and per draw,
so the cost follows the number of distinct customers, as the likelihood's does.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005a). "Counting your customers" the easy
   way. Marketing Science, 24(2), 275-284.
.. [2] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005b). RFM and CLV: using iso-value curves
   for customer base analysis. Journal of Marketing Research, 42(4), 415-430.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from journeymodel.errors import OptionError
from journeymodel.fit.intervals import hdi
from journeymodel.models.churn import likelihoods as lk
from journeymodel.models.churn.data import compress

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.churn.model import ChurnModel

#: Most discounting steps over a horizon (see the module docstring).
MAX_STEPS = 12
#: One year in each time unit (the discount rate is yearly); plain periods: 12 per year.
YEAR = {"D": 365.0, "W": 52.0, "M": 12.0, "Y": 1.0, "period": 12.0}
_CHUNK = 20_000


def steps(horizon: float) -> np.ndarray:
    """End of each discounting step, ``t_k = k H / n`` for k = 1..n, n = min(ceil(H), 12)."""
    n = int(min(max(np.ceil(horizon - 1e-9), 1), MAX_STEPS))
    return horizon * np.arange(1, n + 1) / n


def discounted_transactions(r, alpha, a, b, x, t_x, T, horizon: float, rate: float,
                            year: float):
    """``sum_k (E[Y(t_k)] - E[Y(t_{k-1})]) / (1 + rate) ** (t_k / year)`` (arrays broadcast);
    without discounting ``E[Y(horizon)]``, the expected transactions in the horizon."""
    if rate == 0:
        return lk.bgnbd_expected_future(r, alpha, a, b, x, t_x, T, horizon)
    total, before = 0.0, 0.0
    for t in steps(horizon):  # a dozen steps at most, vectorised over draws and customers
        now = lk.bgnbd_expected_future(r, alpha, a, b, x, t_x, T, t)
        total = total + (now - before) / (1.0 + rate) ** (t / year)
        before = now
    return total


@dataclass(frozen=True)
class Value:
    """Per distinct customer summary and per draw (arrays (n_draws, n_rows)), and the map back
    to customers.

    Attributes
    ----------
    p_alive, transactions, spend, clv : ndarray, shape (n_draws, n_rows)
        P(alive now), expected (undiscounted) transactions in the horizon, expected value per
        transaction, discounted value in the horizon.
    persona : ndarray of int64, shape (n_rows,)
    weight : ndarray of float64, shape (n_rows,)
        Customers with each summary.
    inverse : ndarray of int64, shape (n_customers,)
        Row of each stored customer.
    """

    p_alive: np.ndarray
    transactions: np.ndarray
    spend: np.ndarray
    clv: np.ndarray
    persona: np.ndarray
    weight: np.ndarray
    inverse: np.ndarray

    def per_persona(self, n_personas: int) -> np.ndarray:
        """Mean CLV per customer of each persona, per draw: shape (n_draws, n_personas)."""
        onehot = np.zeros((len(self.persona), n_personas))
        onehot[np.arange(len(self.persona)), self.persona] = self.weight
        counts = onehot.sum(axis=0)
        return (self.clv @ onehot) / np.where(counts > 0, counts, 1.0)


def customer_value(model: ChurnModel, horizon: float, rate: float, n_draws: int,
                   seed: Any) -> Value:
    """:class:`Value` of the customers stored in ``model`` (a bgnbd model fitted with spend).

    Raises
    ------
    OptionError
        The model has no spend model, or ``rate`` is negative.
    """
    if not (model.model == "bgnbd" and model.spend):
        raise OptionError("customer lifetime value needs a bgnbd churn model fitted with its "
                          "spend model: fit churn --model bgnbd --value-col COLUMN")
    if not (rate >= 0 and np.isfinite(rate)):
        raise OptionError(f"--discount-rate must be >= 0 (a yearly rate, 0.1 for 10%) "
                          f"(got {rate!r})")
    c = model.cells_
    m = np.nan_to_num(c["m"], nan=0.0)  # 0: no repeat spend, the population mean applies
    (p, x, t_x, T, mm), w, inv = compress(c["cell_persona"], c["x"], c["t_x"], c["T"], m)
    p = p.astype(np.int64)
    names = ("r", "alpha", "a", "b", "p", "q", "v")
    d = {n: model.draws_of(n, n_draws, seed) for n in names}
    year = YEAR[model.info_["time_unit"]]
    shape = (len(d["r"]), len(p))
    alive, trans, spend, clv = (np.empty(shape) for _ in range(4))
    for lo in range(0, len(p), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        g = {n: v[:, p[sl]] for n, v in d.items()}
        args = (g["r"], g["alpha"], g["a"], g["b"], x[sl], t_x[sl], T[sl])
        alive[:, sl] = lk.bgnbd_p_alive(*args)
        trans[:, sl] = lk.bgnbd_expected_future(*args, horizon)
        xs = np.where(mm[sl] > 0, x[sl], 0.0)
        spend[:, sl] = lk.gg_expected_spend(g["p"], g["q"], g["v"], xs, mm[sl])
        disc = trans[:, sl] if rate == 0 else discounted_transactions(*args, horizon, rate,
                                                                      year)
        clv[:, sl] = spend[:, sl] * disc
    return Value(alive, trans, spend, clv, p, w, inv)


def band(draws: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and HDI over draws (axis 0)."""
    low, high = hdi(draws, prob)
    return draws.mean(axis=0), low, high
