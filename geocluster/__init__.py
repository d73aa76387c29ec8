"""geocluster: find industrial and territorial clusters and measure regional inequality."""

__version__ = "0.1.0"
