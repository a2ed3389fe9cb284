"""The audit trail: changes made through the API, newest first (``web.audit``)."""

from typing import Annotated

from fastapi import Query

from ..context import Api, Section
from ..models import AuditList, AuditOut

#: The most entries one page holds.
MAX_AUDIT_PAGE = 500


#: The routes' tag in the OpenAPI document.
TAG = "audit"


def routes(api: Api, r: Section) -> None:
    app = api.app

    @r.get("/audit", summary="Changes made through the API, newest first")
    async def audit(
        target: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=300,
                description="Only changes to this job, queue or schedule.",
            ),
        ] = None,
        before: Annotated[
            int | None, Query(ge=1, description="A next_cursor: entries older than it.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
    ) -> AuditList:
        """Who (token name and id) did what (method and route) to what, when, and with
        which outcome. Submitted jobs name their submitter in their ``submitted_by``
        header instead."""
        found = await app.aio.call(app.backend.audit, before=before, limit=limit, target=target)
        entries = [AuditOut.model_validate(e, from_attributes=True) for e in found]
        more = len(found) == limit
        return AuditList(entries=entries, next_cursor=found[-1].seq if more and found else None)
