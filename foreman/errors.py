"""Errors the CLI reports as a person's mistake, importable without the rest of Foreman."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: printed, exit code 2."""
