"""geocluster.store."""
