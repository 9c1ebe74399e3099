"""The customer-service workers: classify, lookup, policy and response, over the shop database."""
