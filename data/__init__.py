"""Foreman's default data: the corpus, the support policy, datasets and model prices."""
