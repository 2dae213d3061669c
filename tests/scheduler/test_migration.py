"""The scheduler migration goes down and up again cleanly, seeds the built-ins, and puts its
tenant tables under forced RLS."""

from __future__ import annotations

from tests.conftest import migrate
from tests.support import TestDB

TABLES = ("users", "digests", "integrations", "locations", "reviews", "photo_requests")


def test_upgrade_downgrade_upgrade(db: TestDB) -> None:
    migrate(db.owner_url, "0003", down=True)
    assert db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'scheduler'") == 0
    migrate(db.owner_url, "head")
    assert [r[0] for r in db.query("SELECT task FROM scheduler.recurring ORDER BY 1")] == [
        "digests.daily", "digests.weekly", "photos.request", "reviews.check", "tokens.refresh"]
    rls = db.query("SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                   "WHERE relname = ANY(%s) AND relnamespace = 'public'::regnamespace",
                   (list(TABLES),))
    assert sorted(rls) == sorted((t, True, True) for t in TABLES)
