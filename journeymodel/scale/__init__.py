"""Event logs bigger than one process: the same models on Dask (issue 15)."""
