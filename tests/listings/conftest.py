"""The catalogue fixture; the helpers themselves live in tests/support/catalogue.py."""

from tests.support.catalogue import catalogue

__all__ = ["catalogue"]
