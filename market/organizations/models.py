"""The organisation tables, as the organizations domain and its callers import them.

The table itself lives in `market.auth.organization`: the actor that every request
resolves reads an organisation's kind and verification, and auth sits below
organizations in `market.domains` (organizations manages users through auth).
"""

from market.auth.organization import (
    DEMAND_KINDS,
    SUPPLY_KINDS,
    Organization,
    OrganizationKind,
    VerificationStatus,
)

__all__ = [
    "DEMAND_KINDS",
    "SUPPLY_KINDS",
    "Organization",
    "OrganizationKind",
    "VerificationStatus",
]
