"""Every table, imported in one place so that SQLModel.metadata is complete.

Alembic's env.py and the tests import this module.
"""

from sqlmodel import SQLModel

from market.domains import domain_modules

table_modules = domain_modules("models")
metadata = SQLModel.metadata
