"""``make demo``, the job families' part: one AI response and one store sync, against local
fakes of the model endpoint, Slack and Shopify started here.

A tenant is created through ``app.tenants``, installed in a (fake) Slack workspace and given
a (fake) Shopify store; a Slack mention is routed to ``ai.respond`` and the store's orders
are synced, both by the demo's real worker processes (``env()`` points them at the fakes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text

from app import tenants
from app.actors.assistant import route_event
from app.actors.commerce import enqueue_sync
from app.db.tenant import tenant_session
from app.fakes import FakeModel, FakeShopify, FakeSlack
from app.jobs.results import JobInfo, get_jobs
from app.services.assistant.workspaces import install_workspace
from app.services.commerce.channels import add_channel

ORDERS = 12
PAGE_SIZE = 5
TEAM = "TDEMO"


@dataclass
class FamiliesDemo:
    model: FakeModel = field(default_factory=lambda: FakeModel(latency=0.2))
    slack: FakeSlack = field(default_factory=FakeSlack)
    shopify: FakeShopify = field(default_factory=FakeShopify)
    tenant: tenants.Tenant | None = None
    jobs: dict[str, str] = field(default_factory=dict)

    def start(self) -> FamiliesDemo:
        for fake in (self.model, self.slack, self.shopify):
            fake.start()
        self.shopify.add_orders(ORDERS)
        return self

    def stop(self) -> None:
        for fake in (self.model, self.slack, self.shopify):
            fake.stop()

    def env(self) -> dict[str, str]:
        """What the workers need to reach the fakes."""
        return {"AI_MODEL_BASE_URL": self.model.base_url, "AI_MODEL_API_KEY": self.model.api_key,
                "AI_MODEL_NAME": "demo-model", "SLACK_API_BASE_URL": self.slack.base_url}

    def feed(self, run: str) -> None:
        tenant = self.tenant = tenants.create_tenant(f"demo-{run}-families")
        token, team = f"xoxb-demo-{run}", f"{TEAM}{run.upper()}"
        self.slack.add_workspace(team, token)
        mention = {"type": "event_callback", "team_id": team, "event_id": f"Ev{run}",
                   "event": {"type": "app_mention", "user": "U1", "channel": "C1",
                             "ts": "1700000000.000100",
                             "text": "<@BDEMO> how do I answer this customer?"}}
        with tenant_session(tenant.id) as session:
            install_workspace(session, tenant.id, team_id=team, bot_token=token)
            channel = add_channel(session, tenant.id, platform="shopify", name="demo shop",
                                  base_url=self.shopify.url,
                                  credentials={"access_token": self.shopify.access_token})
            (self.jobs["ai"],) = route_event(session, tenant.id, mention)
            self.jobs["sync"] = enqueue_sync(session, channel, "orders",
                                             page_size=PAGE_SIZE).message_id

    def _jobs(self) -> dict[str, JobInfo]:
        assert self.tenant is not None
        found = get_jobs(self.jobs.values(), tenant=self.tenant.id)
        return {name: found[job_id] for name, job_id in self.jobs.items() if job_id in found}

    def settled(self) -> bool:
        found = self._jobs()
        return len(found) == len(self.jobs) and all(j.finished for j in found.values())

    def verify(self) -> list[tuple[str, bool, str]]:
        assert self.tenant is not None
        found = self._jobs()
        ai, synced = found.get("ai"), found.get("sync")
        ai_result = ai.result if ai and ai.status == "completed" else {}
        posted = [p for p in self.slack.posted if p.get("user") == "U1"]
        with tenant_session(self.tenant.id) as session:
            rows = session.execute(text(
                "SELECT count(*), max(writes) FROM commerce_records WHERE resource = 'orders'"
            )).one()
        pages = -(-ORDERS // PAGE_SIZE)
        sync_result = synced.result if synced and synced.status == "completed" else {}
        return [
            ("AI response: progress 100, result stored",
             bool(ai and ai.progress == 100 and ai_result.get("suggestionId")),
             f"status={ai.status if ai else None} progress={ai.progress if ai else None} "
             f"took {ai_result.get('processingTimeMs')} ms"),
            ("AI response posted to the user (ephemeral)",
             len(posted) == 1 and posted[0]["text"] == ai_result.get("suggestion"),
             f"{len(posted)} message(s) in the fake Slack"),
            ("store sync: every page, every order once",
             sync_result.get("pages") == pages and rows[0] == ORDERS and rows[1] == 1,
             f"status={synced.status if synced else None} pages={sync_result.get('pages')} "
             f"orders={rows[0]} max writes={rows[1]}"),
        ]
