"""Progress of a running benchmark: a live Rich line on a terminal, plain lines otherwise."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from harborbench.engine.progress import Progress as RunProgress


class ProgressDisplay:
    """A context manager whose instances are the engine's progress callback.

    On a terminal it shows a live bar with elapsed time, ops/s, p95 and errors; otherwise it
    prints one plain line every ``plain_every_s`` seconds; with ``quiet`` it prints nothing.
    """

    def __init__(self, console: Console, *, quiet: bool = False, plain_every_s: int = 5) -> None:
        self.console = console
        self.quiet = quiet
        self.plain_every_s = plain_every_s
        self.live = console.is_terminal and not quiet
        self._bar: Progress | None = None
        self._tasks: dict[int, TaskID] = {}
        self._last_plain: dict[int, float] = {}

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}"),
                console=self.console,
                transient=True,
            )
            self._bar.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)

    def __call__(self, p: RunProgress) -> None:
        p95 = "–" if p.p95_s is None else f"{p.p95_s * 1e3:.1f} ms"
        stats = (
            f"{p.throughput_ops:,.0f} ops/s  p95 {p95}  ok {p.successes:,}  "
            f"errors {p.failures:,}  in flight {p.in_flight}"
        )
        if p.shards is not None:
            stats += f"  shards {p.shards[0]}/{p.shards[1]}"
        desc = f"trial {p.trial}/{p.trials} {p.phase}"
        if self._bar is not None:
            task = self._tasks.get(p.trial)
            if task is None:
                task = self._tasks[p.trial] = self._bar.add_task(desc, total=p.total_s, stats="")
            self._bar.update(task, completed=p.elapsed_s, description=desc, stats=stats)
        elif not self.quiet:
            last = self._last_plain.get(p.trial, -1e9)
            if p.elapsed_s - last >= self.plain_every_s:
                self._last_plain[p.trial] = p.elapsed_s
                self.console.print(f"[{p.elapsed_s:5.0f}s/{p.total_s:.0f}s] {desc}: {stats}")
