"""``python -m vtn.cli``."""

from vtn.cli import main

main()
