"""geocluster.cli."""
