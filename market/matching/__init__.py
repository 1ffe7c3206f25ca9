"""Matching demands and results for people: stored matches, feedback, saved searches."""
