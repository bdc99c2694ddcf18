"""`python -m plantwatch` runs the command line, as the `plantwatch` script does."""

from plantwatch.entrypoints.cli.app import main

main()
