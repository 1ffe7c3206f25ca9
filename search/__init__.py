"""Search and matching for the technology market; knows documents, never ORM rows.

Start at `search.backend` (the interface), `search.documents` (what is indexed) and
`search.engines.create_search_engine` (which engine to use).
"""
