"""geocluster.spatialstats."""
