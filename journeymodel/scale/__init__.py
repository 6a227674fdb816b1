"""Event logs bigger than one process: the same models on Dask (``docs/scale.md``).

:func:`fit_scaled` fits a model from statistics summed over the partitions of a log on a Dask
cluster (:func:`fit_scaled_holdout` with held-out scores); :class:`Engine` says which
cluster. Dask is imported only when one of them runs.
"""

from journeymodel.lazy import exports

__all__ = ["Engine", "fit_scaled", "fit_scaled_holdout", "map_log"]

__getattr__ = exports(__name__, {"Engine": "journeymodel.scale.cluster",
                                 "fit_scaled": "journeymodel.scale.fit",
                                 "fit_scaled_holdout": "journeymodel.scale.fit",
                                 "map_log": "journeymodel.scale.engine"})
