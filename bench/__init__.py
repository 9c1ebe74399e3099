"""Scheduling and overhead benchmarks for Foreman (`python -m bench.run`)."""

import os

# Runs before any bench module imports LangChain or LangGraph, so every entry point
# (`bench.run`, `bench.durability`, a test importing a bench module) benchmarks without
# LangSmith tracing or a version check unless the shell asks for them.
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
os.environ.setdefault("LANGGRAPH_NO_VERSION_CHECK", "true")
