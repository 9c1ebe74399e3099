from foreman.core.state import add_usage, empty_usage, merge_by_key, sum_usage_by_model


def test_merge_by_key_newer_wins_and_keeps_others():
    assert merge_by_key({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": 1, "b": 3, "c": 4}
    assert merge_by_key(None, {"a": 1}) == {"a": 1}


def test_usage_reducers_add_per_model():
    u = {"input_tokens": 3, "output_tokens": 2, "cost_usd": 0.5, "calls": 1}
    assert add_usage(u, u) == {"input_tokens": 6, "output_tokens": 4, "cost_usd": 1.0, "calls": 2}
    merged = sum_usage_by_model({"m1": u}, {"m1": u, "m2": empty_usage()})
    assert merged["m1"]["calls"] == 2 and merged["m2"]["calls"] == 0
