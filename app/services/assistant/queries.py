"""Every SQL statement of the assistant, bound parameters only, on the caller's session."""

INSTALL = """
INSERT INTO slack_workspaces (tenant_id, team_id, bot_user_id, bot_token)
VALUES (%(tenant)s, %(team)s, %(bot_user)s, %(token)s)
ON CONFLICT (tenant_id) DO UPDATE
SET team_id = EXCLUDED.team_id, bot_user_id = EXCLUDED.bot_user_id,
    bot_token = EXCLUDED.bot_token, installed_at = now()
"""

# Under RLS a tenant sees its own installation only.
WORKSPACE = "SELECT tenant_id, team_id, bot_user_id, bot_token FROM slack_workspaces"

TENANT_FOR_TEAM = "SELECT pgjobs.tenant_for_slack_team(%(team)s)"

SUGGESTION_COLUMNS = "id, job_id, status, suggestion, error"

FIND = f"SELECT {SUGGESTION_COLUMNS} FROM ai_suggestions WHERE job_id = %(job)s"

# Kept from an earlier attempt if there is one: a retry posts the same suggestion.
GENERATED = f"""
INSERT INTO ai_suggestions AS s (tenant_id, job_id, channel_id, user_id, message_ts,
                                 triggered_by, suggestion)
VALUES (%(tenant)s, %(job)s, %(channel)s, %(user)s, %(ts)s, %(triggered_by)s, %(suggestion)s)
ON CONFLICT (tenant_id, job_id) DO UPDATE
SET suggestion = coalesce(s.suggestion, EXCLUDED.suggestion)
RETURNING {SUGGESTION_COLUMNS}
"""

POSTED = """
UPDATE ai_suggestions SET status = 'posted', posted_at = now(), error = NULL
WHERE id = %(id)s
"""

TIMED = "UPDATE ai_suggestions SET processing_time_ms = %(ms)s WHERE id = %(id)s"

# A job that will not be retried: its row (made now if the model never answered) says why.
FAILED = f"""
INSERT INTO ai_suggestions AS s (tenant_id, job_id, channel_id, user_id, message_ts,
                                 triggered_by, status, error)
VALUES (%(tenant)s, %(job)s, %(channel)s, %(user)s, %(ts)s, %(triggered_by)s, 'failed',
        %(error)s)
ON CONFLICT (tenant_id, job_id) DO UPDATE SET status = 'failed', error = EXCLUDED.error
WHERE s.status <> 'posted'
RETURNING {SUGGESTION_COLUMNS}
"""
