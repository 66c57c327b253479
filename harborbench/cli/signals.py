"""Stop a long command cleanly on Ctrl-C or SIGTERM, keeping what it has measured."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

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
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        yield stop
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
