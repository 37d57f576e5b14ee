"""Monte Carlo campaigns: specs, case drawing and scoring, executors (process pool, Dask) and reports."""
