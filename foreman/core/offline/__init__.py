"""The offline provider: a deterministic, rule-based and extractive chat model.

It answers the same structured-output calls as a real model would, from the same prompts,
so the graph runs end to end with no key and no network. It plans by rules, extracts
sentences from retrieved passages and assembles them; it never invents text.
"""
