"""What the orchestrator and the workers share: configuration, contracts, state, models.

Nothing here imports `foreman.orchestration` or `foreman.workers` (an import contract checks it), so
both can build on it without importing each other's internals.
"""
