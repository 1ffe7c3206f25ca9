"""Results (科技成果, supply) and demands (技术需求, demand).

Multi-valued attributes that browse filters need (IPC codes, transfer and cooperation
modes) are stored as "|"-delimited text, e.g. "|H01M10/052|B22F3/00|": a prefix or
membership filter is then a portable LIKE on SQLite and PostgreSQL alike, with no
JSON-dialect differences. `market.common.codes` encodes and decodes them.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, text
from sqlmodel import Field, SQLModel

from market.db import utcnow


class ListingKind(StrEnum):
    """The two catalogues; also the `entity_type` of their audit events and outbox rows."""

    RESULT = "result"
    DEMAND = "demand"


class TechField(StrEnum):
    """The ten key fields of Ningbo's plan: the top level of the taxonomy."""

    SMART_ECONOMY = "智能经济"
    NEW_MATERIALS = "新材料"
    HIGH_END_EQUIPMENT = "高端装备"
    ENERGY_SAVING = "节能环保"
    GREEN_PETROCHEMICAL = "绿色石化"
    FASHION = "时尚产业"
    HEALTH = "健康产业"
    MARINE = "海洋产业"
    LOGISTICS = "现代物流"
    AGRICULTURE = "现代农业"


class ListingStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"  # waiting for the bureau's review
    REJECTED = "rejected"  # returned to the owner with a reason; editable, resubmittable
    PUBLISHED = "published"
    IN_NEGOTIATION = "in_negotiation"
    TRANSACTED = "transacted"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


# Statuses the public can see.
PUBLIC_STATUSES = (ListingStatus.PUBLISHED, ListingStatus.IN_NEGOTIATION, ListingStatus.TRANSACTED)
# Statuses in which a patent counts as listed (the duplicate guard).
ACTIVE_STATUSES = (ListingStatus.SUBMITTED, ListingStatus.PUBLISHED, ListingStatus.IN_NEGOTIATION)
# Statuses in which the owner may edit.
EDITABLE_STATUSES = (ListingStatus.DRAFT, ListingStatus.REJECTED)


class IpForm(StrEnum):
    INVENTION_PATENT = "发明专利"
    UTILITY_MODEL = "实用新型"
    DESIGN_PATENT = "外观设计"
    SOFTWARE_COPYRIGHT = "软件著作权"
    IC_LAYOUT = "集成电路布图设计"
    PLANT_VARIETY = "植物新品种"
    TECHNICAL_SECRET = "技术秘密"  # noqa: S105 (a trade secret, not a password)
    OTHER = "其他"


PATENT_FORMS = frozenset({IpForm.INVENTION_PATENT, IpForm.UTILITY_MODEL, IpForm.DESIGN_PATENT})


class MaturityStage(StrEnum):
    RESEARCH = "研发"
    LAB = "小试"
    PILOT = "中试"
    INDUSTRIAL = "产业化"


class TransferMode(StrEnum):
    ASSIGNMENT = "转让"
    LICENSE = "许可"
    EQUITY = "作价投资"
    JOINT_DEVELOPMENT = "合作开发"
    TECHNICAL_SERVICE = "技术服务"


class CooperationMode(StrEnum):
    ASSIGNMENT = "转让"
    LICENSE = "许可"
    EQUITY = "作价投资"
    JOINT_DEVELOPMENT = "合作开发"
    COMMISSIONED_DEVELOPMENT = "委托开发"
    TECHNICAL_SERVICE = "技术服务"
    CONSULTING = "技术咨询"


def _active_statuses_only() -> Any:
    statuses = ", ".join(f"'{status.value}'" for status in ACTIVE_STATUSES)
    return text(f"status IN ({statuses})")


class ListingBase(SQLModel):
    """Columns results and demands share (not a table)."""

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    created_by_user_id: int = Field(foreign_key="users.id")
    title: str = Field(max_length=200)
    keywords: list[str] = Field(default_factory=list, sa_type=JSON)
    field: TechField = Field(sa_type=String(20), index=True)
    ipc_codes: str = Field(default="", max_length=1000)  # "|H01M10/052|...|"
    district_code: str = Field(max_length=6, index=True)
    valid_from: date | None = None
    valid_until: date | None = Field(default=None, index=True)
    status: ListingStatus = Field(default=ListingStatus.DRAFT, sa_type=String(20), index=True)
    review_flags: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    last_decision_reason: str = Field(default="", max_length=2000)
    submitted_at: datetime | None = None
    published_at: datetime | None = Field(default=None, index=True)
    closed_at: datetime | None = None  # withdrawn or expired
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Result(ListingBase, table=True):
    __tablename__ = "results"
    __table_args__ = (
        # The duplicate guard, held by the database even under concurrent submissions.
        Index(
            "uq_results_active_patent_application",
            "patent_application_number",
            unique=True,
            sqlite_where=_active_statuses_only(),
            postgresql_where=_active_statuses_only(),
        ),
    )

    summary: str = Field(max_length=5000)
    ip_form: IpForm = Field(sa_type=String(20))
    patent_application_number: str | None = Field(default=None, max_length=20, index=True)
    patent_publication_number: str | None = Field(default=None, max_length=20)
    inventors: list[str] = Field(default_factory=list, sa_type=JSON)
    maturity_stage: MaturityStage = Field(sa_type=String(10), index=True)
    technology_readiness_level: int | None = None  # TRL 1-9
    transfer_modes: str = Field(default="", max_length=200)  # "|转让|许可|"
    # None together with price_negotiable: 面议 (price by negotiation)
    price_fen: int | None = Field(default=None, sa_type=BigInteger, index=True)
    price_negotiable: bool = False
    currency: str = Field(default="CNY", max_length=3)
    discipline: str = Field(default="", max_length=60)
    source: str = Field(default="", max_length=300)  # attribution for imported records


class Demand(ListingBase, table=True):
    __tablename__ = "demands"

    description: str = Field(max_length=5000)
    # When the enterprise needs the problem solved (or proposals in); the listing's own
    # validity is `valid_until`, after which it expires.
    deadline: date | None = Field(default=None, index=True)
    technical_indicators: str = Field(default="", max_length=3000)
    cooperation_modes: str = Field(default="", max_length=200)  # "|合作开发|委托开发|"
    budget_min_fen: int | None = Field(default=None, sa_type=BigInteger)
    budget_max_fen: int | None = Field(default=None, sa_type=BigInteger, index=True)
    budget_negotiable: bool = False
    currency: str = Field(default="CNY", max_length=3)


Listing = Result | Demand  # a row of either catalogue, where the code serves both
