"""Property-based: requests generated from the OpenAPI schema never get a 5xx.

Run with an admin key (every route reachable) against the real trained model on SQLite.
The answers must also match the documented status codes and response schemas.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.api.conftest import bearer


@pytest.fixture
def started_app(app: FastAPI) -> Iterator[FastAPI]:
    with TestClient(app):  # run the lifespan: model loaded, poller running
        yield app


@pytest.mark.slow
def test_no_server_errors(started_app: FastAPI, keys: dict[str, str]) -> None:
    # per-operation Hypothesis runs (schemathesis.pytest.from_fixture fails under pytest 9)
    api = schemathesis.openapi.from_asgi("/openapi.json", started_app)
    operations = [result.ok() for result in api.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    calls: list[tuple[str, int]] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=int(os.environ.get("BOOKCLUB_TEST_SCHEMA_EXAMPLES", "25")),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call_and_validate(headers=bearer(keys["admin"]), checks=checks)
            calls.append((case.operation.label, response.status_code))

        run()
    statuses = {status for _label, status in calls}
    assert len(calls) > 100 and 200 in statuses and statuses <= {200, 401, 403, 404, 422, 503}
    print(f"{len(calls)} generated requests, statuses {sorted(statuses)}")


def test_openapi_documents_examples_and_v1_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/v1/members/{member_id}/recommendations",
        "/v1/titles/{title_id}/similar",
        "/v1/members/{member_id}",
        "/v1/categories/{code}/popular",
        "/v1/purchases",
        "/v1/models",
        "/v1/models/{version}/activate",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths
    schemas = spec["components"]["schemas"]
    assert schemas["RecommendationsPublic"]["examples"]
    assert schemas["PurchaseBatchCreate"]["examples"]
    assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
