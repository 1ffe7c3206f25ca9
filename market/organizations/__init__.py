"""Organisations: universities, institutes, enterprises, broker agencies, the bureau."""
