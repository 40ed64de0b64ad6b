"""Flower's configuration file for ``modq flower`` (``--conf``; Flower executes it and takes the
names it knows as options).

``format_task`` is the second line of defence: workers already redact what events carry
(tasks/redaction.py); here, a task's arguments or result that are not in modq's redacted shape
(an event from a worker without that redaction, a task sent by another app) are hidden on
Flower's tasks list and task page. ``MODQ_EVENTS_SHOW_CONTENT=1`` shows them.
"""

from __future__ import annotations

from typing import Any

from tasks.redaction import (
    HIDDEN,
    is_redacted_args,
    is_redacted_kwargs,
    is_redacted_result,
    show_content,
)

# the tasks list shows each job's (redacted) arguments and result: content ids and decisions
tasks_columns = "name,uuid,state,kwargs,result,received,runtime,worker"


def format_task(task: Any) -> Any:
    """Flower's hook: ``task`` (a copy of Flower's record) with unredacted fields hidden."""
    if show_content():
        return task
    if getattr(task, "args", None) is not None and not is_redacted_args(task.args):
        task.args = HIDDEN
    if getattr(task, "kwargs", None) is not None and not is_redacted_kwargs(task.kwargs):
        task.kwargs = HIDDEN
    if getattr(task, "result", None) is not None and not is_redacted_result(task.result):
        task.result = HIDDEN
    return task
