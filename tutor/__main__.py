"""``python -m tutor``: the same as the ``tutor`` command."""

from .cli import run

run()
