"""The HTTP webhook intake: verify, store once and enqueue in one transaction, answer 202.

``python -m app.intake`` serves it under uvicorn. Routes, settings and how to register a
tenant's endpoints and secrets: the README's "Webhook intake" section. The extension point
for Slack families is :func:`app.intake.slack.register_slack_handler`; for webhook sources,
:func:`app.services.webhooks.register_handler`.
"""
