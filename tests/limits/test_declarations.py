"""Limits are declared once per queue, checked at import, and key every job of the queue."""

from __future__ import annotations

from typing import Any

import dramatiq
import pytest

import app.actors.queues  # noqa: F401  (the product's queue policies, "ai" among them)
from app.broker import PostgresJobsBroker
from app.broker.limits import Limits
from app.jobs.enqueue import prepare
from app.jobs.limits import LimitsInvalid
from app.jobs.setup import build_broker


@pytest.fixture
def fresh() -> PostgresJobsBroker:
    """A broker of its own (never connected): declarations only."""
    return build_broker("postgresql://unused@localhost/unused")


def declare(broker: PostgresJobsBroker, name: str, queue: str, **options: Any) -> dramatiq.Actor:
    def fn(*args: Any, **kwargs: Any) -> None:
        pass

    return dramatiq.actor(fn, broker=broker, actor_name=name, queue_name=queue,
                          tenant_free=True, **options)


NO_KEY = object()


def enqueue_key(broker: PostgresJobsBroker, actor: dramatiq.Actor, *args: Any,
                **options: Any) -> Any:
    """The limit key the job is stored with (None: the tenant's own key; NO_KEY: none)."""
    stored = prepare(broker, actor.message_with_options(args=args, **options))
    return stored["options"].get("limit_key", NO_KEY)


def test_a_misspelt_limit_option_stops_the_import(fresh: PostgresJobsBroker) -> None:
    with pytest.raises(ValueError, match="rate_limt"):
        declare(fresh, "t.typo", "q", rate_limt=(10, 1.0))


@pytest.mark.parametrize(("options", "message"), [
    ({"rate_limit": (10,)}, "rate must be"),
    ({"rate_limit": (0, 1.0)}, "rate must be"),
    ({"rate_limit": (10, "1s")}, "rate must be"),
    ({"concurrency": 0}, "concurrency must be a positive int"),
    ({"queue_concurrency": 2.5}, "queue_concurrency must be a positive int"),
    ({"fair": "yes"}, "fair must be True or False"),
    ({"concurrency": 1, "limit_key": "channel"}, "limit_key must be 'tenant' or a function"),
])
def test_a_malformed_limit_stops_the_import(
    fresh: PostgresJobsBroker, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(LimitsInvalid, match=message):
        declare(fresh, "t.bad", "q", **options)


def test_two_actors_disagreeing_on_their_queue_limits_stop_the_import(
    fresh: PostgresJobsBroker,
) -> None:
    declare(fresh, "t.one", "shared", concurrency=2)
    declare(fresh, "t.two", "shared", rate_limit=(5, 1.0))  # another field: merged
    declare(fresh, "t.three", "shared", concurrency=2)  # the same value: fine
    with pytest.raises(LimitsInvalid, match=r"declares concurrency=3 .* already has "
                                            r"concurrency=2"):
        declare(fresh, "t.four", "shared", concurrency=3)
    assert fresh.queue_limits["shared"] == Limits(rate=(5, 1.0), concurrency=2)


def test_queue_policy_limits_apply_to_every_actor_of_the_queue(
    fresh: PostgresJobsBroker,
) -> None:
    declare(fresh, "t.ai", "ai")
    assert fresh.queue_limits["ai"] == Limits(rate=(10, 1.0), concurrency=5, rate_margin=0.3)
    with pytest.raises(LimitsInvalid, match=r"the queue already has rate=\(10, 1\.0\)"):
        declare(fresh, "t.ai2", "ai", rate_limit=(20, 1.0))
    declare(fresh, "t.free", "unlimited")
    assert "unlimited" not in fresh.queue_limits


def test_every_job_of_a_limited_queue_gets_a_key(fresh: PostgresJobsBroker) -> None:
    by_tenant = declare(fresh, "t.tenant", "keyed", concurrency=1)
    by_arg = declare(fresh, "t.arg", "keyed", limit_key=lambda order: order["channel"])
    plain = declare(fresh, "t.plain", "plain")
    # The tenant's own key: the database stores it as '<tenant>/' (tests/isolation).
    assert enqueue_key(fresh, by_tenant) is None
    assert enqueue_key(fresh, by_arg, {"channel": "shop-1"}) == "shop-1"
    assert enqueue_key(fresh, by_arg, {"channel": "shop-1"}, limit_key="given") == "given"
    # No limits on the queue: no key, so the job stays out of the limits' indexes.
    assert enqueue_key(fresh, plain, limit_key="ignored") is NO_KEY
    with pytest.raises(LimitsInvalid, match="non-empty"):
        enqueue_key(fresh, by_arg, {"channel": ""})


def test_a_queue_s_rate_margin_widens_its_windows_and_only_its_own(
    fresh: PostgresJobsBroker,
) -> None:
    declare(fresh, "t.ai", "ai")  # rate_margin=0.3 in app/actors/queues.py
    declare(fresh, "t.plain", "t_plain", rate_limit=(10, 1.0))
    ai = fresh.limit_params(fresh.queue_limits["ai"])
    plain = fresh.limit_params(fresh.queue_limits["t_plain"])
    assert ai["key_rate_seconds"] == pytest.approx(1.0 + fresh.rate_slack + 0.3)
    assert plain["key_rate_seconds"] == pytest.approx(
        1.0 + fresh.rate_slack + fresh.rate_margin)
    for bad in (-1, "0.3", True, 61):
        with pytest.raises(ValueError, match="rate_margin must be seconds"):
            Limits(rate=(1, 1.0), rate_margin=bad)  # type: ignore[arg-type]
