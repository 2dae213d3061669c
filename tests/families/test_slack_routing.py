"""Slack events routed to ``ai.respond`` jobs in the caller's transaction, and the Slack
installation under RLS, played against by another tenant."""

from __future__ import annotations

from typing import Any

import dramatiq
import psycopg
import pytest

from app.actors.assistant import route_event
from app.db.engine import raw_connection
from app.db.tenant import tenant_session
from app.fakes import FakeSlack
from app.services.assistant.workspaces import get_workspace, tenant_for_team
from app.services.slack_assistant import SlackEventInvalid, requests_for
from tests.families.conftest import mention, slack_tenant
from tests.support import TestDB


def jobs(db: TestDB) -> list[tuple[Any, ...]]:
    return db.query("SELECT tenant_id, actor_name, queue_name, unique_key, message->'args' "
                    "FROM dramatiq.queue ORDER BY enqueued_at")


def message(team: str, event_id: str, **event: Any) -> dict[str, Any]:
    base = {"type": "message", "user": "U2", "text": "any news?", "ts": "1700000001.000200",
            "channel": "C1"}
    return {"type": "event_callback", "team_id": team, "event_id": event_id,
            "event": {**base, **event},
            "authorizations": [{"team_id": team, "user_id": f"B{team}", "is_bot": True}]}


def action(team: str) -> dict[str, Any]:
    return {"type": "message_action", "callback_id": "suggest", "trigger_id": "13345.abc",
            "team": {"id": team}, "user": {"id": "U3"}, "channel": {"id": "C9"},
            "message_ts": "1700000002.000300", "action_ts": "1700000009.1",
            "message": {"type": "message", "user": "U4", "text": "Can you ship by Friday?",
                        "ts": "1700000002.000300", "thread_ts": "1700000000.000001"}}


def test_mentions_thread_replies_and_message_actions_enqueue_ai_responses(
    db: TestDB, broker: dramatiq.Broker, secret_key: str, slack: FakeSlack
) -> None:
    ws = slack_tenant(db, slack, "acme", "T100")
    payloads = [
        mention(ws.team, "<@BT100> draft a reply", "Ev1"),
        mention(ws.team, "<@BT100> in a thread", "Ev2", ts="1700000000.5",
                thread_ts="1700000000.1"),
        message(ws.team, "Ev3", thread_ts="1700000000.1"),
        action(ws.team),
    ]
    with tenant_session(ws.tenant) as session:
        ids = [route_event(session, ws.tenant, p) for p in payloads]
    assert [len(i) for i in ids] == [1, 1, 1, 1]
    rows = jobs(db)
    assert {(r[0], r[1], r[2]) for r in rows} == {(ws.tenant, "ai.respond", "ai")}
    data = [r[4][0] for r in rows]
    assert [d["triggeredBy"] for d in data] == ["mention", "thread", "reply", "message_action"]
    assert data[0] == {"workspaceId": "T100", "userId": "U1", "channelId": "C1",
                       "messageTs": "1700000000.000100",
                       "triggerMessageText": "<@BT100> draft a reply",
                       "contextMessages": [], "triggeredBy": "mention"}
    assert data[1]["threadTs"] == "1700000000.1" and data[2]["threadTs"] == "1700000000.1"
    assert data[3]["contextMessages"] == [{"userId": "U4", "text": "Can you ship by Friday?",
                                           "ts": "1700000002.000300"}]
    assert [r[3] for r in rows] == ["slack-event-Ev1", "slack-event-Ev2", "slack-event-Ev3",
                                    "slack-action-13345.abc"]


def test_other_events_enqueue_nothing(db: TestDB, broker: dramatiq.Broker, secret_key: str,
                                      slack: FakeSlack) -> None:
    ws = slack_tenant(db, slack, "acme", "T100")
    ignored = [
        message(ws.team, "Ev1"),  # a top-level message: not addressed to the bot
        message(ws.team, "Ev2", thread_ts="1700000001.000200"),  # the thread's parent itself
        message(ws.team, "Ev3", thread_ts="1.1", subtype="message_changed"),  # an edit
        message(ws.team, "Ev4", thread_ts="1.1", bot_id="B999"),  # another bot
        message(ws.team, "Ev5", thread_ts="1.1", user="BT100"),  # our own bot's reply
        message(ws.team, "Ev6", thread_ts="1.1", text="<@BT100> hi"),  # app_mention answers it
        {"type": "event_callback", "team_id": ws.team, "event_id": "Ev7",
         "event": {"type": "reaction_added", "user": "U1"}},
        {"type": "block_actions", "team": {"id": ws.team}},
        {"type": "url_verification", "challenge": "x"},
    ]
    with tenant_session(ws.tenant) as session:
        assert [route_event(session, ws.tenant, p) for p in ignored] == [[]] * len(ignored)
    assert jobs(db) == []


def test_a_redelivered_event_returns_the_same_job_and_a_rollback_leaves_none(
    db: TestDB, broker: dramatiq.Broker, secret_key: str, slack: FakeSlack
) -> None:
    ws = slack_tenant(db, slack, "acme", "T100")
    payload = mention(ws.team, "<@BT100> hi", "EvRetried")
    with tenant_session(ws.tenant) as session:
        first = route_event(session, ws.tenant, payload)
    with tenant_session(ws.tenant) as session:
        assert route_event(session, ws.tenant, payload) == first  # Slack's retry: a no-op
    assert len(jobs(db)) == 1
    with pytest.raises(RuntimeError), tenant_session(ws.tenant) as session:
        route_event(session, ws.tenant, mention(ws.team, "<@BT100> x", "EvRolledBack"))
        raise RuntimeError("the route failed after routing")
    assert [r[3] for r in jobs(db)] == ["slack-event-EvRetried"]


def test_bad_payloads_and_sessions_are_refused_clearly(
    db: TestDB, broker: dramatiq.Broker, secret_key: str, slack: FakeSlack
) -> None:
    ws = slack_tenant(db, slack, "acme", "T100")
    broken = mention(ws.team, "hi", "Ev1")
    del broken["event"]["channel"]
    with pytest.raises(SlackEventInvalid, match="no channel"):
        requests_for(broken)
    with pytest.raises(SlackEventInvalid, match="no event_id"):
        requests_for({**mention(ws.team, "hi", "x"), "event_id": None})
    with pytest.raises(SlackEventInvalid, match=r"no team\.id"):
        requests_for({**action(ws.team), "team": {}})
    too_long = mention(ws.team, "x" * 50_000, "Ev2")
    with pytest.raises(SlackEventInvalid, match="invalid trigger_message_text"):
        requests_for(too_long)
    other = db.create_tenant("other")
    with tenant_session(other) as session, pytest.raises(ValueError, match="tenant_session"):
        route_event(session, ws.tenant, mention(ws.team, "hi", "Ev3"))
    assert jobs(db) == []


def test_the_bot_token_is_sealed_and_only_its_tenant_sees_its_installation(
    db: TestDB, secret_key: str, slack: FakeSlack
) -> None:
    a = slack_tenant(db, slack, "a", "TAAA")
    b = slack_tenant(db, slack, "b", "TBBB")
    stored = db.scalar("SELECT bot_token FROM slack_workspaces WHERE team_id = 'TAAA'")
    assert a.token.encode() not in bytes(stored)
    with tenant_session(a.tenant) as session:
        assert get_workspace(session).token() == a.token
    # Tenant B, as the attacker, on the connection its code holds.
    with tenant_session(b.tenant) as session:
        raw = raw_connection(session)
        assert raw.execute("SELECT team_id FROM slack_workspaces").fetchall() == [("TBBB",)]
        assert raw.execute("UPDATE slack_workspaces SET bot_user_id = 'X' "
                           "WHERE team_id = 'TAAA'").rowcount == 0
        assert raw.execute("DELETE FROM slack_workspaces WHERE tenant_id = %s",
                           (a.tenant,)).rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege), tenant_session(b.tenant) as s:
        # Installing itself as tenant A's workspace is refused by the policy.
        raw_connection(s).execute("INSERT INTO slack_workspaces (tenant_id, team_id, bot_token)"
                                  " VALUES (%s, 'TEVIL', 'x')", (a.tenant,))
    assert db.scalar("SELECT bot_user_id FROM slack_workspaces WHERE team_id = 'TAAA'") == "BTAAA"


def test_the_route_finds_a_tenant_by_team_before_any_tenant_context(
    db: TestDB, secret_key: str, slack: FakeSlack
) -> None:
    a = slack_tenant(db, slack, "a", "TAAA")
    with psycopg.connect(db.app_url, autocommit=True) as conn:  # app_user, no tenant set
        assert tenant_for_team(conn, "TAAA") == a.tenant
        assert tenant_for_team(conn, "TNONE") is None
        # The function answers a team id and nothing else; the table stays closed.
        assert conn.execute("SELECT count(*) FROM slack_workspaces").fetchone() == (0,)
    with psycopg.connect(db.worker_url, autocommit=True) as conn, pytest.raises(
            psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT pgjobs.tenant_for_slack_team('TAAA')")
