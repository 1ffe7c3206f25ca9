"""The bureau's trade-volume statistics (bureau staff only)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from market.auth.actor import BureauActor
from market.common.calendar import market_today
from market.common.dates import PlausibleDate
from market.db import DbSession
from market.errors import problem_responses
from market.stats import service
from market.stats.schemas import Breakdown, Dimension, Progress, Summary, TargetRead, TargetSet

router = APIRouter(prefix="/stats", tags=["stats"])
Year = Annotated[int, Path(ge=2000, le=2100)]
YearFilter = Annotated[
    int | None, Query(ge=2000, le=2100, description="Only contracts registered in this year")
]
AsOf = Annotated[
    PlausibleDate | None,
    Query(
        description="Count the ledger as it stood at the end of this day (China time); "
        "default today"
    ),
]
RESPONSES = problem_responses(401, 403, 422)


def _as_of(value: date | None) -> date:
    return value or market_today()


@router.get(
    "/summary",
    response_model=Summary,
    responses=RESPONSES,
    summary="成交额, 技术交易额 and contract count",
)
def summary(
    actor: BureauActor, session: DbSession, as_of: AsOf = None, year: YearFilter = None
) -> Summary:
    return service.summary(session, _as_of(as_of), year)


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "The breakdown as JSON, or as CSV with `format=csv`",
    },
}


@router.get(
    "/breakdown/{dimension}",
    response_model=Breakdown,
    responses={**RESPONSES, **CSV_RESPONSE},
    summary="The trade volume by period, contract type, field, district, kind or broker",
    description="`?format=csv` downloads the same rows (UTF-8 with BOM, amounts in fen "
    "and in yuan); `&headers=zh` gives Chinese column names.",
)
def breakdown(
    dimension: Dimension,
    actor: BureauActor,
    session: DbSession,
    as_of: AsOf = None,
    year: YearFilter = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    headers: Annotated[Literal["en", "zh"], Query()] = "en",
) -> Breakdown | Response:
    report = service.breakdown(session, dimension, _as_of(as_of), year)
    if format == "json":
        return report
    filename = f"trade-volume-{dimension}-{report.as_of.isoformat()}.csv"
    # The BOM makes Excel read the Chinese labels as UTF-8.
    return Response(
        content="\ufeff" + service.to_csv(report, chinese_headers=headers == "zh"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/targets", response_model=list[TargetRead], responses=RESPONSES)
def list_targets(actor: BureauActor, session: DbSession) -> list[TargetRead]:
    return [TargetRead.model_validate(target) for target in service.targets(session)]


@router.put(
    "/targets/{year}",
    response_model=TargetRead,
    responses=RESPONSES,
    summary="Set a year's 技术交易额 target",
)
def set_target(year: Year, body: TargetSet, actor: BureauActor, session: DbSession) -> TargetRead:
    return TargetRead.model_validate(service.set_target(session, actor, year, body))


@router.get(
    "/progress/{year}",
    response_model=Progress,
    responses=problem_responses(401, 403, 404, 422),
    summary="Share of the year's target reached, pace needed and projection",
)
def progress(year: Year, actor: BureauActor, session: DbSession, as_of: AsOf = None) -> Progress:
    return service.progress(session, year, _as_of(as_of))
