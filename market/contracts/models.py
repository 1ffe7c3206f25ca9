"""Technology contracts, their registration, and the trade-volume ledger.

Money is integer fen. `technology_amount_fen` (技术交易额) is always computed by the
service from the total (成交额) minus the non-technical costs; the database checks that
it stays between 0 and the total.

The ledger (`ledger_entries`) is append-only: registration adds a contract's amounts, a
change adds the difference, a cancellation reverses what is left. Its constraints make
double counting impossible even under concurrent requests: every entry carries the
contract's revision as `sequence`, unique per contract; a registration is always
sequence 1 and a cancellation happens at most once.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from market.db import utcnow


class ContractType(StrEnum):
    DEVELOPMENT = "技术开发"
    TRANSFER = "技术转让"
    LICENSE = "技术许可"
    CONSULTING = "技术咨询"
    SERVICE = "技术服务"


class ContractSubtype(StrEnum):
    COMMISSIONED_DEVELOPMENT = "委托开发"
    COOPERATIVE_DEVELOPMENT = "合作开发"
    PATENT_TRANSFER = "专利权转让"
    PATENT_APPLICATION_TRANSFER = "专利申请权转让"
    TECHNICAL_SECRET_TRANSFER = "技术秘密转让"  # noqa: S105 - not a password
    # Other rights: IC layout designs, plant varieties, software copyright, ...
    OTHER_TRANSFER = "其他"
    PATENT_LICENSE = "专利实施许可"
    TECHNICAL_SECRET_LICENSE = "技术秘密使用许可"  # noqa: S105 - not a password


SUBTYPES_BY_TYPE: dict[ContractType, frozenset[ContractSubtype]] = {
    ContractType.DEVELOPMENT: frozenset(
        {ContractSubtype.COMMISSIONED_DEVELOPMENT, ContractSubtype.COOPERATIVE_DEVELOPMENT}
    ),
    ContractType.TRANSFER: frozenset(
        {
            ContractSubtype.PATENT_TRANSFER,
            ContractSubtype.PATENT_APPLICATION_TRANSFER,
            ContractSubtype.TECHNICAL_SECRET_TRANSFER,
            ContractSubtype.OTHER_TRANSFER,
        }
    ),
    ContractType.LICENSE: frozenset(
        {ContractSubtype.PATENT_LICENSE, ContractSubtype.TECHNICAL_SECRET_LICENSE}
    ),
    ContractType.CONSULTING: frozenset(),
    ContractType.SERVICE: frozenset(),
}


class LicenseScope(StrEnum):
    EXCLUSIVE = "独占"  # only the licensee, not even the licensor, may use it
    SOLE = "排他"  # the licensee and the licensor
    ORDINARY = "普通"  # the licensor may license others too


class CostKind(StrEnum):
    """Non-technical costs: subtracted from 成交额 to give 技术交易额."""

    EQUIPMENT = "equipment"
    MATERIALS = "materials"
    PARTS = "parts"
    OTHER = "other"


class ContractStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    NEEDS_CORRECTION = "needs_correction"  # 补正: the bureau asked for more material
    REGISTERED = "registered"
    REFUSED = "refused"
    CANCELLED = "cancelled"


EDITABLE_STATUSES = (ContractStatus.DRAFT, ContractStatus.NEEDS_CORRECTION)
# One live contract per deal: a refused or cancelled one may be entered again.
_LIVE_STATUSES = "status IN ('draft', 'submitted', 'needs_correction', 'registered')"


class Contract(SQLModel, table=True):
    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint("total_amount_fen >= 0", name="ck_contracts_total_nonnegative"),
        CheckConstraint(
            "technology_amount_fen >= 0 AND technology_amount_fen <= total_amount_fen",
            name="ck_contracts_technology_within_total",
        ),
        CheckConstraint("term_end >= term_start", name="ck_contracts_term_order"),
        CheckConstraint(
            "seller_organization_id <> buyer_organization_id", name="ck_contracts_two_parties"
        ),
        Index(
            "uq_contracts_live_per_deal",
            "deal_id",
            unique=True,
            sqlite_where=text(_LIVE_STATUSES),
            postgresql_where=text(_LIVE_STATUSES),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    deal_id: int | None = Field(default=None, foreign_key="deals.id")
    result_id: int | None = Field(default=None, foreign_key="results.id", index=True)
    demand_id: int | None = Field(default=None, foreign_key="demands.id", index=True)
    contract_type: ContractType = Field(sa_type=String(10))
    subtype: ContractSubtype | None = Field(default=None, sa_type=String(20))
    license_scope: LicenseScope | None = Field(default=None, sa_type=String(10))
    field: str = Field(max_length=20)  # a market.listings.models.TechField value

    # The parties, with their name, kind and district as they were at registration:
    # later edits of an organisation must not rewrite history.
    seller_organization_id: int = Field(foreign_key="organizations.id", index=True)
    seller_name: str = Field(max_length=200)
    seller_kind: str = Field(max_length=20)
    seller_district_code: str = Field(max_length=6)
    buyer_organization_id: int = Field(foreign_key="organizations.id", index=True)
    buyer_name: str = Field(max_length=200)
    buyer_kind: str = Field(max_length=20)
    buyer_district_code: str = Field(max_length=6)
    broker_user_id: int | None = Field(default=None, foreign_key="users.id")
    broker_organization_id: int | None = Field(default=None, foreign_key="organizations.id")

    signed_on: date
    term_start: date
    term_end: date
    total_amount_fen: int = Field(sa_type=BigInteger)
    technology_amount_fen: int = Field(sa_type=BigInteger)
    currency: str = Field(default="CNY", max_length=3)

    status: ContractStatus = Field(default=ContractStatus.DRAFT, sa_type=String(20), index=True)
    status_reason: str = Field(default="", max_length=2000)
    registration_number: str | None = Field(default=None, max_length=20, unique=True)
    registered_on: date | None = None
    registered_at: datetime | None = None
    registered_by_user_id: int | None = Field(default=None, foreign_key="users.id")
    # Bumped by every registration, change and cancellation; the ledger's sequence.
    revision: int = 0
    submitted_at: datetime | None = None
    created_by_user_id: int = Field(foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ContractCost(SQLModel, table=True):
    __tablename__ = "contract_costs"
    __table_args__ = (CheckConstraint("amount_fen >= 0", name="ck_contract_costs_nonnegative"),)

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    position: int
    kind: CostKind = Field(sa_type=String(20))
    description: str = Field(default="", max_length=300)
    amount_fen: int = Field(sa_type=BigInteger)


class ContractMilestone(SQLModel, table=True):
    """A payment due under the contract; the amounts add up to 成交额."""

    __tablename__ = "contract_milestones"
    __table_args__ = (
        UniqueConstraint("contract_id", "position", name="uq_contract_milestones_position"),
        CheckConstraint("amount_fen >= 0", name="ck_contract_milestones_nonnegative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    position: int
    title: str = Field(max_length=200)
    due_on: date
    amount_fen: int = Field(sa_type=BigInteger)


class RegistrationCounter(SQLModel, table=True):
    """The last registration number issued in a year; one row per year, locked to bump."""

    __tablename__ = "contract_registration_counters"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_number: int = 0


class LedgerEntryKind(StrEnum):
    REGISTRATION = "registration"
    CHANGE = "change"
    CANCELLATION = "cancellation"


class LedgerEntry(SQLModel, table=True):
    """One movement of the trade volume. Append-only: never updated or deleted.

    The dimensions the statistics group by are copied from the contract at registration,
    so a later edit of an organisation (a move to another district) does not move
    history. `effective_*` is the registration date (the period the amounts count in);
    `recorded_at` is when the entry was written (what "as of" a date filters on).
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("contract_id", "sequence", name="uq_ledger_entries_contract_sequence"),
        CheckConstraint(
            "(kind = 'registration' AND sequence = 1) OR (kind <> 'registration' AND sequence > 1)",
            name="ck_ledger_entries_registration_first",
        ),
        CheckConstraint(
            "kind IN ('registration', 'change', 'cancellation')", name="ck_ledger_entries_kind"
        ),
        CheckConstraint("delta_count IN (-1, 0, 1)", name="ck_ledger_entries_count"),
        Index(
            "uq_ledger_entries_one_cancellation",
            "contract_id",
            unique=True,
            sqlite_where=text("kind = 'cancellation'"),
            postgresql_where=text("kind = 'cancellation'"),
        ),
        Index("ix_ledger_entries_period", "effective_year", "effective_month", "recorded_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    sequence: int
    kind: LedgerEntryKind = Field(sa_type=String(20))
    delta_total_fen: int = Field(sa_type=BigInteger)
    delta_technology_fen: int = Field(sa_type=BigInteger)
    delta_count: int = Field(sa_type=SmallInteger)
    effective_on: date
    effective_year: int
    effective_quarter: int
    effective_month: int
    recorded_at: datetime = Field(default_factory=utcnow, index=True)
    recorded_by_user_id: int | None = Field(default=None, foreign_key="users.id")
    contract_type: str = Field(max_length=10)
    field: str = Field(max_length=20)
    seller_district_code: str = Field(max_length=6)
    buyer_district_code: str = Field(max_length=6)
    seller_kind: str = Field(max_length=20)
    buyer_kind: str = Field(max_length=20)
    broker_organization_id: int | None = None


class LedgerRollup(SQLModel, table=True):
    """Monthly sums of the trade-volume ledger, one row set per dimension: derived data.

    The ledger (`ledger_entries`) stays the source of truth; this table is what the
    dashboard reads instead of a million entries. A row holds the sums of the entries
    recorded in one China-time month (`recorded_month`, YYYYMM) that count in one
    effective month, for one value of one dimension. `dimension` is "period" for the
    rows with no dimension (summary, year/quarter/month breakdowns; `dimension_value`
    "") or a `market.stats.schemas.Dimension` value; the broker dimension's value is the
    agency's organisation id as text, "" for no broker.

    `market.contracts.ledger` adds every entry to its rows in the entry's own transaction
    (`market.contracts.rollup.record`); `market stats rebuild-rollup` recomputes the table.
    """

    __tablename__ = "ledger_rollup"

    # The primary key, in the order the dashboard filters: a dimension, maybe a year.
    dimension: str = Field(primary_key=True, max_length=20)
    effective_year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    effective_month: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    recorded_month: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    dimension_value: str = Field(primary_key=True, max_length=20)
    contract_count: int = Field(default=0, sa_type=BigInteger)
    total_amount_fen: int = Field(default=0, sa_type=BigInteger)
    technology_amount_fen: int = Field(default=0, sa_type=BigInteger)
