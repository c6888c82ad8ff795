"""``python -m ggzy.cli``: the same as the ``ggzy`` command."""

from ggzy.cli import main

main()
