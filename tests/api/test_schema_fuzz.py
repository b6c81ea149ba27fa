"""Schemathesis over the OpenAPI document: no server errors, no response off its schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks as st_checks

from tests.api.conftest import ApiServer, TenantHandle
from tests.conftest import PrefectServer

# Few examples per operation keep the whole API suite within its time budget.
_EXAMPLES = 5
_CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]


def test_openapi_operations_behave(api_server: ApiServer, tenant: TenantHandle, prefect_server: PrefectServer) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {tenant.keys[next(iter(tenant.keys))]}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        # /readyz answers 503 by contract when Prefect is away (it is, for this server).
        checks = _CHECKS[1:] if operation.path == "/readyz" else _CHECKS

        @settings(max_examples=_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=api_server.url, headers=headers, checks=checks, timeout=30)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
