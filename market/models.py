"""Every table, imported in one place so that SQLModel.metadata is complete.

Alembic's env.py and the tests import this module.
"""

from sqlmodel import SQLModel

from market.common import idempotency
from market.domains import domain_modules

# Shared tables outside the domains, then every domain's.
table_modules = [idempotency, *domain_modules("models")]
metadata = SQLModel.metadata
