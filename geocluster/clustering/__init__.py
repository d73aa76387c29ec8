"""geocluster.clustering."""
