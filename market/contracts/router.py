"""HTTP for technology contracts and their registration (认定登记)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel
from sqlmodel import Session

from market.auth.actor import Actor, BureauActor, CurrentActor
from market.common import idempotency
from market.common.idempotency import IdempotencyKeyHeader
from market.common.ids import PathId
from market.common.pagination import Page, Paging
from market.contracts import ledger, service
from market.contracts.models import Contract, ContractStatus
from market.contracts.schemas import (
    AmountsChange,
    ContractCreate,
    ContractRead,
    ContractTerms,
    Decision,
    LedgerEntryRead,
    RegistrationRequest,
    SubmitRequest,
)
from market.db import DbSession
from market.errors import problem_responses

router = APIRouter(tags=["contracts"])
Id = PathId
READ = problem_responses(401, 404)
WRITE = problem_responses(401, 403, 404, 409, 422)


def _once(
    session: Session,
    response: Response,
    actor: Actor,
    operation: str,
    contract_id: int,
    key: str | None,
    request: BaseModel | None,
    work: Callable[[], Contract],
) -> ContractRead:
    """Run a workflow step at most once per Idempotency-Key (scoped to step, contract, user)."""
    result, replayed = idempotency.run_once(
        session,
        endpoint=f"contract.{operation}:{contract_id}",
        user_id=actor.user_id,
        key=key,
        request=request,
        response_model=ContractRead,
        work=lambda: service.read(session, work()),
    )
    if replayed:
        idempotency.mark_replayed(response)
    return result


@router.post(
    "/contracts",
    response_model=ContractRead,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE,
    summary="Enter a contract (seller side): from a won deal or an off-platform deal",
)
def create_contract(body: ContractCreate, actor: CurrentActor, session: DbSession) -> ContractRead:
    return service.read(session, service.create(session, actor, body))


@router.get(
    "/contracts",
    response_model=Page[ContractRead],
    responses=READ,
    summary="Contracts your organisation is party to or brokered (all, for bureau staff)",
)
def list_contracts(
    actor: CurrentActor,
    session: DbSession,
    paging: Paging,
    status_filter: Annotated[ContractStatus | None, Query(alias="status")] = None,
) -> Page[ContractRead]:
    rows, total = service.list_visible(session, actor, paging, status_filter)
    return Page.of([service.read(session, row) for row in rows], total, paging)


@router.get("/contracts/{contract_id}", response_model=ContractRead, responses=READ)
def get_contract(contract_id: Id, actor: CurrentActor, session: DbSession) -> ContractRead:
    return service.read(session, service.get_visible(session, actor, contract_id))


@router.put(
    "/contracts/{contract_id}",
    response_model=ContractRead,
    responses=WRITE,
    summary="Correct a draft, or a contract returned for correction (补正)",
)
def edit_contract(
    contract_id: Id, body: ContractTerms, actor: CurrentActor, session: DbSession
) -> ContractRead:
    return service.read(session, service.edit(session, actor, contract_id, body))


@router.get(
    "/contracts/{contract_id}/ledger",
    response_model=list[LedgerEntryRead],
    responses=READ,
    summary="What this contract has added to the trade volume",
)
def contract_ledger(
    contract_id: Id, actor: CurrentActor, session: DbSession
) -> list[LedgerEntryRead]:
    contract = service.get_visible(session, actor, contract_id)
    assert contract.id is not None
    return [
        LedgerEntryRead.model_validate(entry) for entry in ledger.entries_for(session, contract.id)
    ]


@router.post(
    "/contracts/{contract_id}/submit",
    response_model=ContractRead,
    responses=WRITE,
    summary="Submit for registration (seller side); also resubmits after 补正",
)
def submit_contract(
    contract_id: Id,
    actor: CurrentActor,
    session: DbSession,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
    body: SubmitRequest | None = None,
) -> ContractRead:
    note = body.note if body else ""
    return _once(
        session,
        response,
        actor,
        "submit",
        contract_id,
        idempotency_key,
        body,
        lambda: service.submit(session, actor, contract_id, note),
    )


@router.post(
    "/contracts/{contract_id}/register",
    response_model=ContractRead,
    responses=WRITE,
    summary="Register (认定登记) and count it in the trade volume",
)
def register_contract(
    contract_id: Id,
    actor: BureauActor,
    session: DbSession,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
    body: RegistrationRequest | None = None,
) -> ContractRead:
    note = body.note if body else ""
    return _once(
        session,
        response,
        actor,
        "register",
        contract_id,
        idempotency_key,
        body,
        lambda: service.register(session, actor, contract_id, note),
    )


@router.post("/contracts/{contract_id}/refuse", response_model=ContractRead, responses=WRITE)
def refuse_contract(
    contract_id: Id, body: Decision, actor: BureauActor, session: DbSession
) -> ContractRead:
    return service.read(session, service.refuse(session, actor, contract_id, body.reason))


@router.post(
    "/contracts/{contract_id}/request-correction",
    response_model=ContractRead,
    responses=WRITE,
    summary="Ask the seller side for missing material (补正)",
)
def request_correction(
    contract_id: Id, body: Decision, actor: BureauActor, session: DbSession
) -> ContractRead:
    return service.read(
        session, service.request_correction(session, actor, contract_id, body.reason)
    )


@router.post(
    "/contracts/{contract_id}/change",
    response_model=ContractRead,
    responses=WRITE,
    summary="Correct a registered contract's amounts; the ledger gets the difference",
)
def change_contract(
    contract_id: Id,
    body: AmountsChange,
    actor: BureauActor,
    session: DbSession,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ContractRead:
    return _once(
        session,
        response,
        actor,
        "change",
        contract_id,
        idempotency_key,
        body,
        lambda: service.change_amounts(session, actor, contract_id, body),
    )


@router.post(
    "/contracts/{contract_id}/cancel",
    response_model=ContractRead,
    responses=WRITE,
    summary="Cancel a registration; the ledger reverses what the contract counted",
)
def cancel_contract(
    contract_id: Id,
    body: Decision,
    actor: BureauActor,
    session: DbSession,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ContractRead:
    return _once(
        session,
        response,
        actor,
        "cancel",
        contract_id,
        idempotency_key,
        body,
        lambda: service.cancel(session, actor, contract_id, body.reason),
    )
