"""``python -m sim.cli``: the same as the ``cxsim`` command."""

from sim.cli import main

main()
