"""``python -m geocluster`` runs the CLI."""

from geocluster.cli import main

main()
