"""What every fitted model shares: parameters, fitted state as xarray data, save/load, results.

A model follows scikit-learn's conventions: ``__init__`` only stores its parameters; ``fit``
does the work and returns ``self``; learned attributes end in ``_``; using an unfitted model
raises :class:`NotFittedError`. A subclass declares its ``model_type`` and implements
``fit``, ``_to_tree``/``_from_tree`` (its fitted state as an xarray DataTree) and ``summary``.
Capabilities such as ``predict``, ``simulate``, ``forecast`` are methods a subclass may add; the
CLI checks for them and says so when a model type does not offer one.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from journeymodel.errors import ModelFileError, NotFittedError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

    from journeymodel.data.journeys import JourneySet
    from journeymodel.io.h5tree import H5Group


def k_candidates(name: str, value: Any, auto_range) -> list[int]:
    """The numbers of components to fit: ``value`` (a whole number >= 1) or, for ``"auto"``,
    every K of ``auto_range`` (low, high); an OptionError naming ``name`` otherwise.

    >>> k_candidates("n_stages", "auto", (2, 4)), k_candidates("n_stages", 3, (2, 8))
    ([2, 3, 4], [3])
    """
    if value == "auto":
        lo, hi = (int(v) for v in auto_range)
        if not 1 <= lo <= hi:
            raise OptionError(f"auto_range must be two numbers 1 <= low <= high "
                              f"(got {list(auto_range)})")
        return list(range(lo, hi + 1))
    try:
        k = int(value)
    except (TypeError, ValueError):
        k = 0
    if k < 1 or str(k) != str(value).strip():
        raise OptionError(f"{name} must be a whole number >= 1 or 'auto' (got {value!r})")
    return [k]


@dataclass
class Result:
    """What a model returns to a user: JSON for machines, tables for people, a frame for files.

    Attributes
    ----------
    json : dict
        Printed by ``--json``: plain JSON types only.
    tables : list of (title, DataFrame)
        Printed to the terminal, in order.
    frame : DataFrame or None
        Written by ``-o FILE`` (CSV or Parquet) where the command offers it.
    notes : list of str
        Short lines printed after the tables (caveats, convergence, what to try).
    kinds : dict of str to str
        What the numbers of a column are, by column name, for every table: ``money``,
        ``duration`` (seconds), ``periods``, ``count``, ``probability``, ``number``, ``text``
        (may wrap) or ``name`` (never cut); see :mod:`journeymodel.io.formatting`. Only the text
        tables use it: the JSON and the frame keep raw numbers.
    """

    json: dict[str, Any]
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    frame: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JourneyMeta:
    """What a model remembers of the journeys it was fitted on (no customer ids)."""

    touchpoints: tuple[str, ...]
    personas: tuple[str, ...]
    devices: tuple[str, ...]
    time_kind: str
    gap: float | None
    observed_until: float
    n_journeys: int
    n_events: int
    outcome_counts: dict[str, float] | None = None  # weighted journeys per outcome

    @classmethod
    def of(cls, journeys: JourneySet) -> JourneyMeta:
        return cls(tuple(journeys.touchpoints), tuple(journeys.personas),
                   tuple(journeys.devices), journeys.time_kind, journeys.gap,
                   float(journeys.observed_until), journeys.n_journeys, journeys.n_events,
                   journeys.outcome_counts())

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["observed_until"] = None if d["observed_until"] != d["observed_until"] else (
            d["observed_until"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JourneyMeta:
        d = dict(d)
        for key in ("touchpoints", "personas", "devices"):
            d[key] = tuple(d.get(key, ()))
        d["observed_until"] = float("nan") if d.get("observed_until") is None else float(
            d["observed_until"])
        return cls(**d)


class JourneyModel:
    """Base of all journeymodel models (see module docstring)."""

    model_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    ledger_: Any
    journeys_: JourneyMeta

    # -- parameters ------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, as given."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitted state ----------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "journeys_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(journeys) first")

    def _remember(self, journeys: JourneySet) -> None:
        """Record the ledger and vocabularies of the training journeys (call from ``fit``)."""
        self.ledger_ = journeys.ledger
        self.journeys_ = JourneyMeta.of(journeys)

    def fit(self, journeys: JourneySet) -> Self:  # pragma: no cover - abstract
        raise NotImplementedError

    def _to_tree(self) -> xr.DataTree:  # pragma: no cover - abstract
        raise NotImplementedError

    def _from_tree(self, tree: xr.DataTree) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def summary(self) -> Result:  # pragma: no cover - abstract
        """Parameters and diagnostics, for ``journeymodel inspect``."""
        raise NotImplementedError

    def outcome_mix(self) -> tuple[str, dict[str, float]] | None:
        """What the model counted, by outcome: ``(what is counted, {outcome: count})``, or None
        for a model that counts no outcomes (the report's data section draws these)."""
        return None

    # -- persistence -----------------------------------------------------------------------
    def to_datatree(self) -> xr.DataTree:
        """The fitted model as an xarray DataTree with the standard attributes."""
        self._check_fitted()
        tree = self._to_tree()
        tree.attrs.update(self._file_attrs())
        return tree

    def to_groups(self) -> H5Group | None:
        """:meth:`to_datatree` as numpy groups (:class:`journeymodel.io.h5tree.H5Group`), for a
        model that can build them without xarray; None otherwise."""
        self._check_fitted()
        groups = self._to_groups()
        if groups is not None:
            groups.attrs.update(self._file_attrs())
        return groups

    def _to_groups(self) -> H5Group | None:
        """The fitted state as numpy groups, or None (a subclass may build them)."""
        return None

    def _file_attrs(self) -> dict[str, Any]:
        """The standard root attributes of a model file (see :mod:`journeymodel.io.persist`)."""
        from journeymodel import __version__
        from journeymodel.io.persist import SCHEMA_ATTR, TYPE_ATTR, VERSION_ATTR, to_attr

        return {TYPE_ATTR: self.model_type, SCHEMA_ATTR: self.schema_version,
                VERSION_ATTR: __version__, "params": to_attr(self.get_params()),
                "ledger": to_attr(self.ledger_.to_dict()),
                "journeys": to_attr(self.journeys_.to_dict())}

    @classmethod
    def from_datatree(cls, tree: xr.DataTree) -> Self:
        from journeymodel.data.ledger import Ledger

        attrs = tree.attrs
        for key in ("params", "ledger", "journeys"):
            if key not in attrs:
                raise ModelFileError(f"damaged model file: the {key!r} attribute is missing")
        model = cls(**json.loads(attrs["params"]))
        model.ledger_ = Ledger.from_dict(json.loads(attrs["ledger"]))
        model.journeys_ = JourneyMeta.from_dict(json.loads(attrs["journeys"]))
        model._from_tree(tree)
        return model

    def save(self, path: str | Path) -> Path:
        """Save to a netCDF file; see :func:`journeymodel.io.persist.save_model`."""
        from journeymodel.io.persist import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a model of this class; refuses files of another model type."""
        from journeymodel.io.persist import load_model

        model = load_model(path)
        if not isinstance(model, cls):
            raise ModelFileError(
                f"{path}: is a {model.model_type} model, not a {cls.model_type} model")
        return model
