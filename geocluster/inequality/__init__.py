"""geocluster.inequality."""
