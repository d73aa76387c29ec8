"""geocluster.territories."""
