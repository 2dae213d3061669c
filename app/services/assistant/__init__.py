"""The Slack AI assistant (plan 003): workspaces, AI responses, suggestions. The routing of
Slack events into jobs is ``app.services.slack_assistant``; the actor ``app.actors.assistant``."""
