"""geocluster.engine."""
