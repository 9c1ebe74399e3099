"""Foreman workers: specialised subgraphs the orchestrator dispatches subtasks to."""
