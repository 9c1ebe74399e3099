"""Foreman's command line, checkpointer setup and terminal display."""
