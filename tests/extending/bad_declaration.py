"""A user module whose recurring task names a misspelt actor: loading it must fail.

Listed in ``JOBS_MODULES`` by the tests, after the example it misspells.
"""

from app.scheduler import recurring

recurring(task="bad.ghost", actor="shopnotes.sumarize", cron="* * * * *")
