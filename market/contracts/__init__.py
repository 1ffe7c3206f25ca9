"""Technology contracts, their registration (认定登记) and the trade-volume ledger."""
