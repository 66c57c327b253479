"""Stop a long command cleanly on Ctrl-C or SIGTERM, keeping what it has measured.

Outside an event loop, :func:`sigterm_as_ctrl_c` makes SIGTERM (what a cancelled CI job sends)
raise :class:`KeyboardInterrupt` like Ctrl-C, so that the CLI's error boundary exits 130 instead
of the process dying with 143 while it starts up or writes its files. Inside the loop,
:func:`stop_on_signals` turns both into a stop event and then puts the previous handlers back.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from harborbench.report.console import stderr


@contextlib.contextmanager
def stop_on_signals(message: str) -> Iterator[asyncio.Event]:
    """Within a running event loop: an event set by the first Ctrl-C or SIGTERM.

    The command passes the event to the library as its ``stop``, which ends the current trial
    early and keeps the partial result. A second Ctrl-C gives up at once (KeyboardInterrupt).
    SIGTERM is what a cancelled CI job sends, so it is treated like Ctrl-C.

    Args:
        message: printed on standard error when the first signal arrives.

    Yields:
        The stop event.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # second Ctrl-C: give up at once
            loop.remove_signal_handler(signal.SIGINT)
            raise KeyboardInterrupt
        stderr.print(f"[yellow]{message}[/]")
        stop.set()

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        yield stop
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous[sig])  # asyncio would leave SIGTERM at its default


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Within the block (in the main thread), SIGTERM raises KeyboardInterrupt like Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
