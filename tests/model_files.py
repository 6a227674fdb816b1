"""Saved model files of every type, and ways to damage them, for the model-validation tests.

Markov and stages models are fitted here (a second or two); the Bayesian ones come from
``tests/data`` (see ``tests/data/make_model_files.py``): a PyMC compile is too slow for the fast
suite.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

DATA = Path(__file__).parent / "data"
TYPES = ("markov", "stages", "conversion", "churn")


def write_model_files(folder: Path) -> dict[str, Path]:
    """One saved model of each type in ``folder``, plus the events they were fitted on."""
    from journeymodel.data.datasets import write_sample_events
    from journeymodel.data.journeys import load_journeys
    from journeymodel.models.markov.model import MarkovJourneyModel
    from journeymodel.models.stages.model import StageModel

    events = folder / "events.csv"
    write_sample_events(events, n_customers=200, seed=0)
    journeys = load_journeys(events)
    files = {"events": events,
             "markov": MarkovJourneyModel(order=1).fit(journeys).save(folder / "markov.nc"),
             "stages": StageModel(n_stages=3, restarts=1, seed=0).fit(journeys).save(
                 folder / "stages.nc")}
    for name in ("conversion", "churn"):
        files[name] = Path(shutil.copy(DATA / f"{name}.nc", folder / f"{name}.nc"))
    return files


def rewrite(src: Path, dst: Path, edit: Callable[[dict[str, xr.Dataset], dict], None]) -> Path:
    """Copy model file ``src`` to ``dst`` through xarray, letting ``edit(nodes, root_attrs)``
    change the datasets of the tree's nodes (keyed ``"/"``, ``"/experience"``, ...) and the
    root attributes in place. Any shape can be written this way (h5py cannot resize)."""
    with xr.open_datatree(src, engine="h5netcdf") as tree:
        tree = tree.load()
    nodes = {node.path: node.to_dataset(inherit=False) for node in tree.subtree}
    attrs = dict(tree.attrs)
    nodes["/"].attrs = {}
    edit(nodes, attrs)
    out = xr.DataTree.from_dict(nodes)
    out.attrs = attrs
    out.to_netcdf(dst, engine="h5netcdf")
    return dst


def set_attr(src: Path, dst: Path, name: str, value, group: str = "/") -> Path:
    """Copy ``src`` to ``dst`` with attribute ``name`` of ``group`` set to ``value`` (h5py)."""
    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        f[group].attrs[name] = value
    return dst


def set_values(src: Path, dst: Path, name: str, values) -> Path:
    """Copy ``src`` to ``dst`` with variable ``name`` (a path) overwritten, same shape (h5py)."""
    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        f[name][...] = np.broadcast_to(values, f[name].shape)
    return dst


def add_huge_variable(src: Path, dst: Path, elements: int = 3_000_000_000) -> Path:
    """Copy ``src`` to ``dst`` with a gzip-compressed variable declaring ``elements`` float64
    values (no chunk is written: the file stays small, reading it would allocate 8 bytes per
    element)."""
    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        f.create_dataset("bomb", shape=(elements,), dtype="f8", chunks=(1 << 20,),
                         compression="gzip", fillvalue=1.0)
    return dst
