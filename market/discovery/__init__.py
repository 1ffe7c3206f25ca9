"""Discovery: the application side of search (engine wiring, indexing, search endpoints)."""
