"""Matching's fixtures; they and the scene they build live in tests/support/matching.py."""

from tests.support.matching import catalogue, local_engine, meili_engine, meilisearch_server, scene

__all__ = ["catalogue", "local_engine", "meili_engine", "meilisearch_server", "scene"]
