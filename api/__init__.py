"""geocluster HTTP API."""
