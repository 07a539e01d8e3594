"""Waiting for something observable instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Awaitable, Callable


async def until(check: Callable[[], Any | Awaitable[Any]], timeout: float = 10.0, interval: float = 0.05,
                what: str = "the condition") -> Any:
    """Poll `check` (plain or async) until it returns something true; that value. AssertionError
    after `timeout` seconds, with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not hold within {timeout:g} s (last: {value!r})")
        await asyncio.sleep(interval)
