"""What workers use but is not a worker: the corpus index, web search and artifact files."""
