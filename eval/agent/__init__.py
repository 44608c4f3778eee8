"""The agent task suite (``crmind eval agent``): template tasks over the demo CRM, graded by end state and citations.

- ``tasks.yaml`` (written by ``make_tasks.py``): the tasks as data; ``tasks.py`` resolves them against a database.
- ``harness.py``: a fresh copy of a small demo CRM per task, the assistant run with its approvals, the grading and the
  report (pass^1, pass^k, tool-call validity, turns, model calls, latency; per kind and language).
"""
