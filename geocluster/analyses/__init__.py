"""geocluster.analyses."""
