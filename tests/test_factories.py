"""The factories' rows are what the API serves: a listing, deal or contract made by
tests/support/factories.py reads back through the real endpoints, to the right people."""

from __future__ import annotations

from fastapi.testclient import TestClient

from market.listings.models import ListingStatus
from tests.support.factories import Market


def test_listings_from_the_factory_are_public_once_published(
    client: TestClient, market: Market
) -> None:
    owner = market.institute_member()
    result_id = market.result(owner)
    demand_id = market.demand(market.enterprise_member())
    draft_id = market.result(owner, status=ListingStatus.DRAFT)

    assert client.get(f"/results/{result_id}").json()["status"] == "published"
    assert client.get(f"/demands/{demand_id}").json()["status"] == "published"
    assert client.get(f"/results/{draft_id}").status_code == 404
    assert client.get(f"/results/{draft_id}", headers=owner.headers).status_code == 200


def test_deals_and_contracts_from_the_factory_are_seen_by_their_parties_only(
    client: TestClient, market: Market
) -> None:
    seller, buyer, broker = market.institute_member(), market.enterprise_member(), market.broker()
    stranger = market.enterprise_member()
    deal_id = market.deal(seller, buyer, broker=broker, result_id=market.result(seller))
    contract_id = market.contract(seller, buyer, deal_id=deal_id)

    deal = client.get(f"/deals/{deal_id}", headers=broker.headers).json()
    assert (deal["stage"], deal["broker_organization_id"]) == ("lead", broker.organization_id)
    contract = client.get(f"/contracts/{contract_id}", headers=buyer.headers).json()
    assert (contract["status"], contract["technology_amount_fen"]) == ("draft", 100_000_000)
    assert client.get(f"/deals/{deal_id}", headers=stranger.headers).status_code == 404
    assert client.get(f"/contracts/{contract_id}", headers=stranger.headers).status_code == 404
