"""geocluster.assets."""
