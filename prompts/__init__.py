"""Foreman's prompt templates (`*.md`), read by `foreman.core.prompts`."""
