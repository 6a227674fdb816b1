"""Write the small Bayesian model files the fast tests load (tests/data/{conversion,churn}.nc).

A conversion or churn fit needs a PyMC compile (a minute here), too slow for the fast suite, so
the tests load these files instead. They are the models of ``journeymodel demo --customers 300
--seed 0`` with the posterior cut to 2 chains x 50 draws (the checks on load do not depend on
the number of draws). Regenerate after a change of either model's file layout:

    journeymodel demo --out /tmp/demo --customers 300 --seed 0
    python tests/data/make_model_files.py /tmp/demo
"""

from __future__ import annotations

import sys
from pathlib import Path

import xarray as xr

HERE = Path(__file__).parent


def shrink(src: Path, dst: Path, chains: int = 2, draws: int = 50) -> None:
    with xr.open_datatree(src, engine="h5netcdf") as tree:
        tree = tree.load()
    nodes = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if "chain" in ds.dims:
            ds = ds.isel(chain=slice(chains), draw=slice(draws))
        nodes[node.path] = ds
    out = xr.DataTree.from_dict(nodes)
    out.attrs = dict(tree.attrs)
    diagnostics = out.attrs.get("diagnostics")
    if diagnostics:
        out.attrs["diagnostics"] = diagnostics.replace('"chains": 4', f'"chains": {chains}') \
            .replace('"draws": 1000', f'"draws": {draws}')
    out.to_netcdf(dst, engine="h5netcdf")


if __name__ == "__main__":
    demo = Path(sys.argv[1])
    for name in ("conversion", "churn"):
        shrink(demo / f"{name}.nc", HERE / f"{name}.nc")
        print(HERE / f"{name}.nc", (HERE / f"{name}.nc").stat().st_size)
