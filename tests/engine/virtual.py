"""Virtual time and a fake client for engine tests: whole trials in milliseconds, exact figures.

Tests marked ``@pytest.mark.looptime`` run on an event loop whose clock advances only when every
task waits (the ``looptime`` package), so a 10 s trial takes no wall time and every timestamp is
exact when the engine is given a :class:`~harborbench.engine.clock.LoopClock`.
:class:`StallClock` reads that loop's clock and can jump ahead synchronously, the way a blocked
event loop finds every timer overdue when it wakes. :class:`FakeClient` answers after a scripted
latency on the loop's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from harborbench.engine.clock import NS_PER_S, LoopClock
from harborbench.profile import Profile, load_profile_dict


class StallClock(LoopClock):
    """The loop's clock plus the length of every simulated stall so far."""

    def __init__(self) -> None:
        super().__init__()
        self.skew_ns = 0

    def now_ns(self) -> int:
        return super().now_ns() + self.skew_ns

    def stall(self, seconds: float) -> None:
        """Block the (simulated) event loop for ``seconds``: time jumps, nothing runs meanwhile."""
        self.skew_ns += round(seconds * NS_PER_S)


def response(content: str | None = "ok") -> Any:
    """The shape of a chat-completion response that the engine reads."""
    message = SimpleNamespace(content=content, role="assistant")
    return SimpleNamespace(choices=[SimpleNamespace(message=message)], usage=None)


Behaviour = Callable[[int], Awaitable[Any]]


class FakeClient:
    """A client under test whose ``acreate`` runs ``behaviour(call_index)``.

    Args:
        behaviour: coroutine function of the 0-based call index; returns the response or raises.
        status: what ``optimization_status()`` returns.
    """

    def __init__(self, behaviour: Behaviour, status: dict[str, Any] | None = None) -> None:
        self.behaviour = behaviour
        self.status = status or {}
        self.calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.closed = False
        self.chat = SimpleNamespace(completions=SimpleNamespace(acreate=self.acreate))

    async def acreate(self, **params: Any) -> Any:
        i = self.calls
        self.calls += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self.behaviour(i)
        finally:
            self.in_flight -= 1

    def optimization_status(self) -> dict[str, Any]:
        return dict(self.status)

    def get_statistics(self) -> dict[str, Any]:
        return {"calls": self.calls}

    async def aclose(self) -> None:
        self.closed = True


def after(seconds: float) -> Behaviour:
    """Answer every call after ``seconds``."""

    async def behaviour(i: int) -> Any:
        await asyncio.sleep(seconds)
        return response()

    return behaviour


def closed_loop_send(
    one: Callable[[int], Awaitable[None]],
) -> Callable[[int, Callable[[], int | None]], Awaitable[None]]:
    """The closed-loop driver's ``send(intended_ns, next_ns)`` built from a fake ``one(t)`` that
    sends one request: it goes on while ``next_ns()`` gives a time, as RequestSender.send does."""

    async def send(intended_ns: int, next_ns: Callable[[], int | None]) -> None:
        t: int | None = intended_ns
        while t is not None:
            await one(t)
            t = next_ns()

    return send


def profile(load: dict[str, Any], **extra: Any) -> Profile:
    """A small valid profile (its target is never contacted when a client is injected)."""
    data: dict[str, Any] = {
        "name": "virtual",
        "target": {"base_url": "http://127.0.0.1:9/v1"},
        "request": {"prompt_tokens": 4, "max_tokens": 4, "timeout": "10s"},
        "load": load,
        "warmup": "0s",
        "duration": "10s",
    }
    data.update(extra)
    return load_profile_dict(data)
