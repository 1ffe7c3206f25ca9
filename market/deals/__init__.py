"""Interests, proposals (揭榜) and the broker's deal pipeline."""
