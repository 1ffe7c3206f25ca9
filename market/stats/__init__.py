"""Trade-volume statistics for the bureau, computed from the contracts ledger."""
