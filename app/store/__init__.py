"""The job store: every statement and state transition on the job table lives here.

Callers (the public job API, the broker, maintenance, operations, the scheduler) call its
functions and get typed rows back; no other module holds SQL on the job table.
"""
