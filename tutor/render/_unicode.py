"""Moved to tutor._mathtext; kept while callers move."""

from .._mathtext import unicode

__all__ = ["unicode"]
