"""geocluster.io."""
