"""The product's queues, declared the way any user declares theirs (``declare_queue``)."""

from app.jobs import declare_queue

# 000: webhooks, scheduled and notifications share 5 attempts from 1 s, 24 h / 1000
# completed, 7 days failed; activity: 3 attempts, 1 h / 500 completed.
declare_queue("webhooks", max_attempts=5)
declare_queue("notifications", max_attempts=5)
declare_queue("scheduled", max_attempts=5)
declare_queue("activity", max_attempts=3, completed_max_age=3600, completed_max_count=500)
# 001: scheduled messages and reminders, 3 from 1 s, keep 100 completed / 500 failed.
declare_queue("messages", max_attempts=3, completed_max_count=100, failed_max_count=500)
declare_queue("reminders", max_attempts=3, completed_max_count=100, failed_max_count=500)
# Messaging (issue 12). 002: SMS alerts and email digests, 3 attempts from 1 s, keep
# 100 completed / 500 failed, like 001's scheduled messages and reminders above.
declare_queue("sms-notifications", max_attempts=3, completed_max_count=100,
              failed_max_count=500)
declare_queue("email-digests", max_attempts=3, completed_max_count=100, failed_max_count=500)
# 003: AI responses, 3 from 2 s; 10 starts/s and 5 running per workspace (tenant).
# The model endpoint counts calls as they arrive; a call follows its claim by the job's
# first steps and the machine's scheduling (over 200 ms beside a CPU hog): the windows are
# 0.3 s wider, so it never sees more than 10 in a second (about 7.4 a second sustained).
declare_queue("ai", max_attempts=3, min_backoff=2_000, rate_limit=(10, 1.0), concurrency=5,
              rate_margin=0.3)
# 004: commerce. Completed kept 24 h, failed 7 days; retries 3-5 with exponential backoff.
# Syncs run one at a time per channel (their actors' limit_key is the channel id); webhook
# processing runs at high priority (its actor's priority).
declare_queue("shopify-sync", max_attempts=3, min_backoff=5_000, completed_max_count=None,
              concurrency=1)
declare_queue("woocommerce-sync", max_attempts=3, min_backoff=5_000, completed_max_count=None,
              concurrency=1)
declare_queue("channel-sync", max_attempts=3, min_backoff=5_000, completed_max_count=None)
declare_queue("webhook-processing", max_attempts=5, completed_max_count=None)
declare_queue("shipment-create", max_attempts=5, min_backoff=2_000, completed_max_count=None)
declare_queue("shipment-tracking", max_attempts=3, min_backoff=5_000, completed_max_count=None)
