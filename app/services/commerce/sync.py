"""Incremental, resumable sync of one store resource (orders, products, inventory,
fulfilments) into ``commerce_records``.

Each page is fetched, then its records and the cursor of the next page are written in one
short transaction of the job's tenant that commits at once (``pages``, the actor's
``separate_session``). A sync killed mid-way therefore resumes, on its next attempt, at the
page after the last committed one, and no page's records are written twice: the unique
key of the sync job keeps a second sync of the same resource from starting meanwhile, the
queue's per-channel concurrency of 1 keeps two syncs of one channel from overlapping, and
the cursor's compare-and-set stops an attempt that lost its job to a rescue.

The watermark (latest change seen) becomes the next run's ``since`` only when a run
completes, so an incremental sync never skips what a failed run did not reach.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.providers.errors import RateLimited
from app.providers.pages import Page
from app.services.commerce import cursors, records
from app.services.commerce.channels import get_channel, store_client
from app.services.commerce.payloads import SyncRequest
from app.services.commerce.settings import CommerceSettings

logger = logging.getLogger(__name__)

Pages = Callable[[], AbstractContextManager[Session]]
Progress = Callable[[float, str], object]

#: A store's 429 asking to wait at most this long is waited out inside the job (a long sync
#: should not lose its place in line); a longer wait, or too many, fails the attempt.
MAX_INLINE_WAIT = 10.0
MAX_INLINE_WAITS = 5


@dataclass(frozen=True)
class SyncOutcome:
    channel_id: str
    resource: str
    pages: int
    records: int
    #: True when this run picked up a run that had stopped part-way.
    resumed: bool
    #: The watermark the next incremental sync starts from (ISO 8601), if any.
    since: str | None


def _percent(page: int, total: int | None) -> float:
    """Progress of page ``page``: exact when the store says how many pages there are;
    otherwise approaching (never reaching) 95 %."""
    if total:
        return min(99.0, 100.0 * page / total)
    return 95.0 * (1 - 0.85 ** page)


def _fetch(client: Any, resource: str, cursor: cursors.Cursor, limit: int, fields: str) -> Page:
    """One page, waiting out short rate limits (Shopify's leaky bucket refills in seconds)."""
    for waits in range(MAX_INLINE_WAITS + 1):
        try:
            page: Page = client.fetch(resource, since=cursor.run_since,
                                      cursor=cursor.page_cursor, limit=limit)
            return page
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else 1.0
            if wait > MAX_INLINE_WAIT or waits == MAX_INLINE_WAITS:
                raise
            logger.info("event=sync_rate_limited %s wait=%.1f", fields, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def run_sync(
    tenant_id: uuid.UUID, request: SyncRequest, *, platform: str, pages: Pages,
    progress: Progress, settings: CommerceSettings,
) -> SyncOutcome:
    """Sync ``request.resource`` of ``request.channel_id`` (a ``platform`` channel)."""
    with pages() as session:
        channel = get_channel(session, request.channel_id, platform=platform)
        cursor = cursors.start_or_resume(session, tenant_id, channel.id, request.resource,
                                         full=request.full)
    client = store_client(channel, settings)
    resumed = cursor.resumed
    fields = f"tenant={tenant_id} channel={channel.id} resource={request.resource}"
    logger.info("event=sync_started %s resumed=%s from_page=%s", fields, resumed,
                cursor.run_pages + 1)
    limit = request.page_size or settings.page_size
    while True:
        page = _fetch(client, request.resource, cursor, limit, fields)
        with pages() as session:
            written = records.upsert(session, tenant_id, channel.id, request.resource,
                                     page.records)
            cursor = cursors.advance(session, cursor, next_cursor=page.next_cursor,
                                     high_water=page.high_water, records=written)
        logger.info("event=sync_page %s page=%s items=%s written=%s", fields, cursor.run_pages,
                    page.items, written)
        progress(_percent(cursor.run_pages, page.total_pages),
                 f"page {cursor.run_pages}: {cursor.run_records} records written")
        if page.next_cursor is None:
            break
    with pages() as session:
        since = cursors.finish(session, cursor)
    logger.info("event=sync_completed %s pages=%s records=%s", fields, cursor.run_pages,
                cursor.run_records)
    return SyncOutcome(channel_id=str(channel.id), resource=request.resource,
                       pages=cursor.run_pages, records=cursor.run_records, resumed=resumed,
                       since=since.isoformat() if since else None)
