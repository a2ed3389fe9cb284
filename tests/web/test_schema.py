"""schemathesis against the served OpenAPI document: generated requests, valid and not,
with and without a token; no server error, no response outside the document, and no
request outside it accepted.

Two checks are narrowed, for reasons of HTTP, not of this API:

- ``positive_data_acceptance`` is left out: a request the schema allows can still be
  refused for what it asks (a task that is not exposed, an unknown id, countdown and eta
  at once, a bulk action with no filter): a documented 4xx in the error shape, which the
  other checks validate.
- ``negative_data_rejection`` is skipped when the query string is what was made invalid:
  a query carries text only, so a "number" or ``false`` sent where the schema says string
  (``?queue=0.0``, ``?cursor=false``) arrives as a valid string.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from conveyor import App
from conveyor.web import TokenStore, create_api

APP = App("schema", backend="memory://", http_tasks=["*"])
APP.task(name="echo")(lambda value=None: value)
SECRET = TokenStore(APP.backend).create("schemathesis", "admin")[1]
# Left out: the event stream runs until the client leaves, and a workflow body is
# recursive, which takes schemathesis about a minute for a handful of examples (over the
# per-test timeout). test_events.py and test_workflows.py cover them.
schema = (
    schemathesis.openapi.from_asgi("/api/openapi.json", create_api(APP))
    .exclude(path="/api/events")
    .exclude(path="/api/workflows", method="POST")
)
SETTINGS = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def validate(case: schemathesis.Case, headers: dict[str, str] | None = None) -> None:
    excluded = [positive_data_acceptance]
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.QUERY):
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers=headers, excluded_checks=excluded)


@schema.parametrize()
@SETTINGS
def test_with_a_token(case: schemathesis.Case) -> None:
    validate(case, {"Authorization": f"Bearer {SECRET}"})


@schema.parametrize()
@SETTINGS
def test_without_a_token(case: schemathesis.Case) -> None:
    validate(case)
