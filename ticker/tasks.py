"""Stopping a process's background tasks for certain.

On Python 3.11, ``asyncio.wait_for`` loses a cancellation that arrives in the
same loop turn as the awaited operation completes: it returns the result and
the task runs on. redis-py sends every command through ``wait_for`` when a
socket timeout is set, so a stream reader, scheduler or audience task cancelled
at shutdown can miss it and loop forever, and the server never stops.
:func:`cancel` repeats the cancellation until every task has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

RECANCEL_AFTER = 0.1
"""Seconds a cancelled task has to end before it is cancelled again."""


async def cancel(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and return once all have ended; what they raised besides
    the cancellation is raised here, as awaiting them would."""
    pending = set(tasks)
    ended = list(pending)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_AFTER)
    for task in ended:
        with contextlib.suppress(asyncio.CancelledError):
            task.result()
