"""geocluster.ingest."""
