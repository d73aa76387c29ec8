"""geocluster.sectors."""
