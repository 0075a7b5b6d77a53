"""``python -m tutor``: the same as the ``tutor`` command."""

from .cli import run

if __name__ == "__main__":
    run()
