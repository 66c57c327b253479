"""A measurement session: one target opened once, trials against it, and their results.

Every command that measures does the same five things: collect the environment once, load
scipy in a thread while the target starts, open the target (the built-in mock in its own
process, or an external ``base_url`` with the API key read from the environment), run trials
of one or more profiles (each with its load plan), and assemble results. A
:class:`MeasurementSession` does them, and ``run`` (:func:`harborbench.engine.runner.arun`),
``compare --run``, ``tune``, ``rollback-check``'s gates and the coordinator of a sharded run
use it::

    async with MeasurementSession(profile) as session:
        trials = [await session.trial(profile, index=i, stop=stop) for i in range(3)]
    result = session.result(profile, trials, interrupted=False)

(Not to be confused with :mod:`harborbench.compare.session`, the rule that decides how many
interleaved rounds a comparison takes.)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from harborbench.engine.runner import (
    TrialClient,
    _nothing_succeeded,
    build_result,
    open_target,
    plan_from_profile,
    run_trial,
)
from harborbench.environment import collect_environment

if TYPE_CHECKING:
    from harborbench.engine.clock import Clock
    from harborbench.engine.progress import ProgressCallback
    from harborbench.engine.schedule import LoadPlan
    from harborbench.mockserver.process import MockServer
    from harborbench.profile import Profile
    from harborbench.result import IntervalRow, RunResult, TrialResult

__all__ = ["MeasurementSession", "Target"]

#: Imported in a thread while the target starts: the memory fit that ends every trial needs it,
#: and its import (about 1.6 s) must neither delay the end of a trial or a Ctrl-C nor compete
#: with the load for the GIL.
PRELOADED_MODULE = "scipy.stats"


@dataclass(frozen=True, slots=True)
class Target:
    """Where the trials send their requests.

    Attributes:
        base_url: the OpenAI-compatible base URL (``.../v1``).
        api_key: the key the client sends (the mock's dummy key, or one read from the
            environment; never stored in a result), or None.
        server: the built-in mock, whose counters are reset and read around each trial; None
            for an external target.
    """

    base_url: str
    api_key: str | None = None
    server: MockServer | None = None


class MeasurementSession:
    """Open a target once, run trials of one or more profiles against it, build their results.

    An async context manager. Entering it collects the environment, starts importing scipy in
    a thread, opens the profile's target (:func:`~harborbench.engine.runner.open_target`) unless
    ``target`` is given, and waits for the import. Leaving it closes the target it opened
    (a ``target`` passed in belongs to the caller and stays open). A session is entered once;
    its results can still be built after it is left.

    Args:
        profile: the profile whose ``target`` section names the target. Trials of any profile
            with that target may be run (both sides of ``compare --run``, tune's variants).
        target: an already open target (rollback-check starts its own mock), or a stand-in for
            tests with a fake ``client``; None opens ``profile``'s.
        environment: what :func:`harborbench.environment.collect_environment` returns (None:
            collected when the session is entered).
        client: the client under test for every trial, used as is and not closed (tests pass
            a fake); None: a fresh ``create_fast_client`` per trial, closed at its end.
        clock: reads the time and sleeps (None: the real clock); tests pass a virtual one.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        target: Target | None = None,
        environment: dict[str, Any] | None = None,
        client: TrialClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.profile = profile
        self._target = target
        self._environment = environment
        self._client = client
        self._clock = clock
        # Keyed by id; the profile is kept so that its id cannot be reused by another object.
        self._plans: dict[int, tuple[Profile, LoadPlan]] = {}
        self._exit = contextlib.ExitStack()
        self._entered = False

    @property
    def target(self) -> Target:
        """The target the trials use (set once the session is entered).

        Raises:
            RuntimeError: the session was never entered.
        """
        if self._target is None:
            raise RuntimeError("enter the MeasurementSession (async with) before using it")
        return self._target

    @property
    def environment(self) -> dict[str, Any]:
        """The environment stored in every result (collected once, when the session is entered).

        Raises:
            RuntimeError: the session was never entered and no environment was given.
        """
        if self._environment is None:
            raise RuntimeError("enter the MeasurementSession (async with) before using it")
        return self._environment

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a MeasurementSession is entered once; make a new one")
        self._entered = True
        if self._environment is None:
            self._environment = collect_environment()
        preload = threading.Thread(
            target=importlib.import_module, args=(PRELOADED_MODULE,), name="preload", daemon=True
        )
        preload.start()
        try:
            if self._target is None:
                base_url, api_key, server = self._exit.enter_context(open_target(self.profile))
                self._target = Target(base_url, api_key, server)
            await asyncio.to_thread(preload.join)
        except BaseException as exc:
            # ``async with`` does not call __aexit__ when __aenter__ raises: close here.
            self._exit.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit.__exit__(exc_type, exc, tb)

    def plan(self, profile: Profile) -> LoadPlan:
        """The profile's load plan (:func:`~harborbench.engine.runner.plan_from_profile`), once.

        Args:
            profile: a validated profile (the same object gives the same cached plan).

        Returns:
            Its plan.
        """
        cached = self._plans.get(id(profile))
        if cached is None:
            cached = (profile, plan_from_profile(profile))
            self._plans[id(profile)] = cached
        return cached[1]

    async def trial(
        self,
        profile: Profile,
        *,
        index: int,
        stop: asyncio.Event | None = None,
        progress: ProgressCallback | None = None,
        on_rows: Callable[[list[IntervalRow]], object] | None = None,
    ) -> TrialResult:
        """Run one trial of ``profile`` against the session's target.

        Args:
            profile: the profile (any, not only those given to the session).
            index: the 0-based trial number stored in the result.
            stop: when set, the trial ends early and is marked interrupted.
            progress: called about once per second.
            on_rows: called once per second with the time-series rows closed in that second.

        Returns:
            The trial's figures (:func:`~harborbench.engine.runner.run_trial`).

        Raises:
            RuntimeError: the session was not entered.
            ProfileError: the profile's ``client`` section is not a valid client config.
        """
        target = self.target
        return await run_trial(
            profile, self.plan(profile), target.base_url, target.api_key,
            index=index, server=target.server, progress=progress, stop=stop,
            clock=self._clock, client=self._client, on_rows=on_rows,
        )  # fmt: skip

    def result(
        self,
        profile: Profile,
        trials: Sequence[TrialResult],
        *,
        interrupted: bool,
        name: str | None = None,
    ) -> RunResult:
        """Assemble a run's result from its trials, with the session's environment.

        Args:
            profile: the profile the trials ran.
            trials: its trials so far (possibly none).
            interrupted: whether the run was stopped early.
            name: the run name (default: the profile's).

        Returns:
            The result (:func:`~harborbench.engine.runner.build_result`).

        Raises:
            RuntimeError: the session was never entered and no environment was given.
        """
        return build_result(
            profile, name or profile.name, list(trials), self.environment,
            interrupted=interrupted,
        )  # fmt: skip

    def check_succeeded(self, result: RunResult) -> None:
        """Raise when a run that was not stopped early had not one measured success.

        Args:
            result: the run's result.

        Raises:
            AllRequestsFailedError, TargetUnreachableError: see
                the messages of ``runner._nothing_succeeded`` (exit 4).
        """
        total = result.total
        if not result.interrupted and total is not None and total.successes == 0:
            raise _nothing_succeeded(total, self.target.base_url)
