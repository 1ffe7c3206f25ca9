"""Every table, imported in one place so that SQLModel.metadata is complete.

Alembic's env.py and the tests import this module.
"""

from sqlmodel import SQLModel

from market.auth import organization
from market.common import idempotency
from market.domains import domain_modules

# Shared tables outside the domains, then every domain's.
# The organisation table lives in auth beside the actor, outside auth/models.py.
table_modules = [organization, idempotency, *domain_modules("models")]
metadata = SQLModel.metadata
