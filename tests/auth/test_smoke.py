from fastapi.testclient import TestClient

from tests.support.factories import Market


def test_health_and_me(client: TestClient, market: Market) -> None:
    assert client.get("/health").json()["status"] == "ok"
    member = market.institute_member()
    response = client.get("/me", headers=member.headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == member.user_id
