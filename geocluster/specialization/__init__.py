"""geocluster.specialization."""
