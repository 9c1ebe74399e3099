"""The orchestrator graph: plan, dispatch, validate, review, synthesize (`orchestrator.py`).

Import it from the front door, `from foreman import build_graph, graph`.
"""
