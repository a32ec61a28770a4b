"""`python -m dedup` runs the CLI."""
from dedup.cli import main

main()
