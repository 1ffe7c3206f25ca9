"""Accounts, passwords, tokens and the current-actor dependency."""
