"""``python -m slr_tui.cli ...``: the same as the ``slr`` console script."""

from slr_tui.cli import main

main()
