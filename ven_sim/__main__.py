"""``python -m ven_sim`` = ``ven-sim``."""

from ven_sim.cli import main

main()
