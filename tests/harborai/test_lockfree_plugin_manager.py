"""LockFreePluginManager and LockedPluginRegistry: semantics, and behaviour under many threads."""

from __future__ import annotations

import gc
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from harborbench.harborai.core.optimizations.lockfree_plugin_manager import (
    LockedPluginRegistry,
    LockFreePluginManager,
    PluginState,
)
from harborbench.harborai.errors import ConfigError, UnknownModelError

Registry = LockFreePluginManager["Plugin"] | LockedPluginRegistry["Plugin"]
BOTH = pytest.mark.parametrize(
    "make", [LockFreePluginManager, LockedPluginRegistry], ids=["lockfree", "locked"]
)


@dataclass(frozen=True, slots=True)
class Plugin:
    name: str
    serial: int


class Factory:
    """A plugin factory that counts its calls and can be told to fail."""

    def __init__(self, name: str, *, error: Exception | None = None) -> None:
        self.name = name
        self.error = error
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Plugin:
        with self._lock:
            self.calls += 1
            serial = self.calls
        if self.error is not None:
            raise self.error
        return Plugin(self.name, serial)


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond to make races as likely as possible."""
    old_interval_s = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old_interval_s)


def run_threads(n_threads: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in threads released together; returns the results or raises the first
    error of a thread whose result was not an exception object."""
    barrier = threading.Barrier(n_threads)
    results: list[object] = [None] * n_threads

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return results


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Wait for a condition another thread makes true (test helper; the code under test
    itself never polls)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


# --- semantics shared by both registries ------------------------------------------------------


@BOTH
def test_lazy_register_then_get_builds_once(make: Callable[..., Registry]) -> None:
    registry = make()
    factory = Factory("openai")
    registry.register("openai", ["gpt-b", "gpt-a"], factory)
    assert factory.calls == 0
    assert registry.state("openai") is PluginState.UNLOADED
    first = registry.get("gpt-a")
    assert first == Plugin("openai", 1)
    assert registry.get("gpt-b") is first
    assert factory.calls == 1
    assert registry.state("openai") is PluginState.LOADED
    assert registry.models() == ["gpt-a", "gpt-b"]
    assert registry.plugin_names() == ["openai"]
    assert registry.loaded_plugins() == {"openai": first}
    stats = registry.statistics()
    load_time_s = stats.pop("load_time_s")
    assert isinstance(load_time_s, float) and load_time_s >= 0.0
    assert stats == {
        "plugins": 1,
        "models": 2,
        "loaded": 1,
        "lookups": 2,
        "registrations": 1,
        "cas_retries": 0,
        "loads": 1,
        "load_failures": 0,
        "load_waits": 0,
    }


@BOTH
def test_eager_register_builds_at_registration(make: Callable[..., Registry]) -> None:
    registry = make(lazy=False)
    assert registry.lazy is False
    factory = Factory("p")
    registry.register("p", ["m"], factory)
    assert factory.calls == 1
    assert registry.state("p") is PluginState.LOADED
    assert registry.get("m") == Plugin("p", 1)
    assert factory.calls == 1


@BOTH
def test_eager_register_with_failing_factory_raises_and_stays_registered(
    make: Callable[..., Registry],
) -> None:
    registry = make(lazy=False)
    boom = RuntimeError("cannot build")
    with pytest.raises(RuntimeError) as info:
        registry.register("p", ["m"], Factory("p", error=boom))
    assert info.value is boom
    assert registry.state("p") is PluginState.FAILED
    assert registry.models() == ["m"]


@BOTH
def test_unknown_model_error_lists_known_models(make: Callable[..., Registry]) -> None:
    registry = make()
    registry.register("a", ["m2", "m1"], Factory("a"))
    with pytest.raises(UnknownModelError) as info:
        registry.get("nope")
    assert info.value.model == "nope"
    assert info.value.known == ["m1", "m2"]
    assert str(info.value) == "unknown model 'nope'; known models: m1, m2"
    assert isinstance(info.value, KeyError)


@BOTH
def test_invalid_registrations_raise_config_error(make: Callable[..., Registry]) -> None:
    registry = make()
    registry.register("a", ["shared"], Factory("a"))
    with pytest.raises(ConfigError, match="'shared' of plugin 'b' is already served by plugin 'a'"):
        registry.register("b", ["own", "shared"], Factory("b"))
    assert registry.models() == ["shared"]  # nothing of the rejected registration remains
    with pytest.raises(ConfigError, match="at least one model"):
        registry.register("c", [], Factory("c"))
    with pytest.raises(ConfigError, match="non-empty string"):
        registry.register("", ["x"], Factory("c"))
    with pytest.raises(ConfigError, match="model names must be non-empty strings"):
        registry.register("c", ["x", ""], Factory("c"))
    assert registry.plugin_names() == ["a"]


@BOTH
def test_reregistering_a_name_replaces_its_models_and_plugin(
    make: Callable[..., Registry],
) -> None:
    registry = make()
    registry.register("a", ["old-1", "old-2"], Factory("a"))
    assert registry.get("old-1") == Plugin("a", 1)
    second = Factory("a")
    registry.register("a", ["new", "new"], second)
    assert registry.models() == ["new"]
    assert registry.state("a") is PluginState.UNLOADED
    with pytest.raises(UnknownModelError):
        registry.get("old-1")
    assert registry.get("new") == Plugin("a", 1)
    assert second.calls == 1
    assert registry.statistics()["registrations"] == 2


@BOTH
def test_failing_factory_sets_failed_and_next_get_retries(make: Callable[..., Registry]) -> None:
    registry = make()
    boom = ValueError("provider misconfigured")
    factory = Factory("p", error=boom)
    registry.register("p", ["m"], factory)
    with pytest.raises(ValueError) as info:
        registry.get("m")
    assert info.value is boom
    assert registry.state("p") is PluginState.FAILED
    assert registry.loaded_plugins() == {}
    factory.error = None
    assert registry.get("m") == Plugin("p", 2)
    assert registry.state("p") is PluginState.LOADED
    stats = registry.statistics()
    assert (stats["loads"], stats["load_failures"], stats["loaded"]) == (1, 1, 1)


class Interrupt(BaseException):
    """Stands for KeyboardInterrupt without interrupting pytest."""


@BOTH
def test_interrupted_factory_leaves_plugin_unloaded(make: Callable[..., Registry]) -> None:
    registry = make()
    calls: list[int] = []

    def factory() -> Plugin:
        calls.append(1)
        if len(calls) == 1:
            raise Interrupt
        return Plugin("p", len(calls))

    registry.register("p", ["m"], factory)
    with pytest.raises(Interrupt):
        registry.get("m")
    assert registry.state("p") is PluginState.UNLOADED
    assert registry.get("m") == Plugin("p", 2)


@BOTH
def test_load_all_attempts_every_plugin_and_raises_first_error(
    make: Callable[..., Registry],
) -> None:
    registry = make()
    boom = RuntimeError("bad")
    good_1, bad, good_2 = Factory("a"), Factory("b", error=boom), Factory("c")
    registry.register("a", ["ma"], good_1)
    registry.register("b", ["mb"], bad)
    registry.register("c", ["mc"], good_2)
    with pytest.raises(RuntimeError) as info:
        registry.load_all()
    assert info.value is boom
    states = [registry.state(n) for n in ("a", "b", "c")]
    assert states == [PluginState.LOADED, PluginState.FAILED, PluginState.LOADED]
    bad.error = None
    registry.load_all()
    assert (good_1.calls, bad.calls, good_2.calls) == (1, 2, 1)
    assert registry.statistics()["lookups"] == 0  # load_all is not a lookup


@BOTH
def test_state_of_unknown_plugin_raises_key_error(make: Callable[..., Registry]) -> None:
    with pytest.raises(KeyError):
        make().state("ghost")


@BOTH
def test_clear_unregisters_everything_and_keeps_counters(make: Callable[..., Registry]) -> None:
    registry = make()
    registry.register("a", ["m"], Factory("a"))
    registry.get("m")
    registry.clear()
    assert registry.models() == []
    assert registry.plugin_names() == []
    with pytest.raises(UnknownModelError):
        registry.get("m")
    stats = registry.statistics()
    assert (stats["plugins"], stats["lookups"], stats["registrations"]) == (0, 2, 1)
    registry.register("a", ["m"], Factory("a"))  # usable again after clear
    assert registry.get("m") == Plugin("a", 1)


# --- many threads ----------------------------------------------------------------------------


@BOTH
def test_lookup_count_is_exact_under_16_threads(make: Callable[..., Registry]) -> None:
    registry = make()
    registry.register("a", ["m1", "m2"], Factory("a"))

    def work(i: int) -> None:
        model = "m1" if i % 2 else "m2"
        for _ in range(5_000):
            registry.get(model)

    assert run_threads(16, work) == [None] * 16
    assert registry.statistics()["lookups"] == 80_000


def test_lookup_count_survives_garbage_collected_threads() -> None:
    registry: LockFreePluginManager[Plugin] = LockFreePluginManager()
    registry.register("a", ["m"], Factory("a"))
    for _ in range(5):  # threads come and go, as in a pool that is resized
        run_threads(4, lambda _: [registry.get("m") for _ in range(100)])
        gc.collect()
    registry.get("m")
    assert registry.statistics()["lookups"] == 2_001
    assert len(registry._lookups._cells) == 1  # dead threads' cells were folded away


def test_managers_leave_no_per_thread_hooks_behind_when_collected() -> None:
    gc.collect()
    hooks_before = len(weakref.finalize._registry)  # type: ignore[attr-defined]
    refs = []
    for _ in range(50):
        registry: LockFreePluginManager[Plugin] = LockFreePluginManager()
        registry.register("a", ["m"], Factory("a"))
        registry.get("m")  # registers a hook on the main thread, which never ends
        refs.append(weakref.ref(registry))
    del registry
    gc.collect()
    assert [r() for r in refs] == [None] * 50  # the hooks do not keep a manager alive
    assert len(weakref.finalize._registry) == hooks_before  # type: ignore[attr-defined]


@BOTH
def test_thundering_herd_calls_lazy_factory_exactly_once(make: Callable[..., Registry]) -> None:
    registry = make()

    def slow_factory() -> Plugin:
        slow_factory.calls += 1  # type: ignore[attr-defined]
        time.sleep(0.05)  # long enough for every other thread to arrive meanwhile
        return Plugin("p", slow_factory.calls)  # type: ignore[attr-defined]

    slow_factory.calls = 0  # type: ignore[attr-defined]
    registry.register("p", ["m"], slow_factory)
    results = run_threads(16, lambda _: registry.get("m"))
    assert slow_factory.calls == 1  # type: ignore[attr-defined]
    assert all(r is results[0] for r in results)
    assert results[0] == Plugin("p", 1)


def test_herd_waits_on_the_loader_then_shares_its_plugin() -> None:
    registry: LockFreePluginManager[Plugin] = LockFreePluginManager()
    release = threading.Event()
    factory = Factory("p")

    def gated_factory() -> Plugin:
        release.wait(timeout=30)
        return factory()

    registry.register("p", ["m"], gated_factory)
    loader = threading.Thread(target=registry.get, args=("m",))
    loader.start()
    wait_until(lambda: registry.state("p") is PluginState.LOADING)
    waiters_done: list[object] = []
    waiters = [
        threading.Thread(target=lambda: waiters_done.append(registry.get("m"))) for _ in range(15)
    ]
    for thread in waiters:
        thread.start()
    wait_until(lambda: registry.statistics()["load_waits"] == 15)
    assert registry.state("p") is PluginState.LOADING
    assert waiters_done == []  # all 15 are blocked on the event, none built its own plugin
    release.set()
    for thread in [loader, *waiters]:
        thread.join(timeout=30)
    assert factory.calls == 1
    assert waiters_done == [Plugin("p", 1)] * 15
    stats = registry.statistics()
    assert (stats["loads"], stats["load_waits"], stats["lookups"]) == (1, 15, 16)


def test_herd_waiting_on_a_failing_load_all_get_its_error_once() -> None:
    registry: LockFreePluginManager[Plugin] = LockFreePluginManager()
    release = threading.Event()
    boom = ConnectionError("provider down")
    calls: list[int] = []

    def failing_factory() -> Plugin:
        calls.append(1)
        release.wait(timeout=30)
        raise boom

    registry.register("p", ["m"], failing_factory)
    outcomes: list[object] = []

    def attempt() -> None:
        try:
            outcomes.append(registry.get("m"))
        except ConnectionError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    threads[0].start()
    wait_until(lambda: registry.state("p") is PluginState.LOADING)
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: registry.statistics()["load_waits"] == 15)
    release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(calls) == 1  # the waiters did not start loads of their own
    assert len(outcomes) == 16
    assert all(o is boom for o in outcomes)
    assert registry.state("p") is PluginState.FAILED
    assert registry.statistics()["load_failures"] == 1


@BOTH
def test_concurrent_registrations_none_lost(make: Callable[..., Registry]) -> None:
    registry = make()

    def work(i: int) -> None:
        for j in range(200):
            registry.register(f"p{i}-{j}", [f"m{i}-{j}-a", f"m{i}-{j}-b"], Factory(f"p{i}-{j}"))

    assert run_threads(8, work) == [None] * 8
    assert len(registry.plugin_names()) == 1_600
    expected = sorted(f"m{i}-{j}-{s}" for i in range(8) for j in range(200) for s in "ab")
    assert registry.models() == expected
    stats = registry.statistics()
    assert (stats["registrations"], stats["plugins"], stats["models"]) == (1_600, 1_600, 3_200)
    assert registry.get("m7-199-b") == Plugin("p7-199", 1)


@BOTH
def test_lookups_during_registrations_never_see_a_half_built_state(
    make: Callable[..., Registry],
) -> None:
    registry = make()
    published: list[str] = []  # names whose register() has returned
    stop = threading.Event()
    problems: list[str] = []
    lookups_per_reader: list[int] = []

    def writer(i: int) -> None:
        for j in range(300):
            name = f"w{i}-{j}"
            registry.register(name, [f"{name}-a", f"{name}-b"], Factory(name))
            published.append(name)

    def reader() -> None:
        count = 0
        done = False
        while not done:
            done = stop.is_set()  # one last pass after the writers finished
            for name in published[-20:]:
                first = registry.get(f"{name}-a")
                second = registry.get(f"{name}-b")
                count += 2
                if first is not second or first != Plugin(name, 1):
                    problems.append(f"{name}: {first!r} / {second!r}")
        lookups_per_reader.append(count)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    run_threads(4, writer)
    stop.set()
    for thread in readers:
        thread.join(timeout=30)
    assert problems == []
    assert len(registry.models()) == 2 * 4 * 300
    assert len(lookups_per_reader) == 4
    assert min(lookups_per_reader) >= 40  # the last pass alone looks up 20 names twice
    assert registry.statistics()["lookups"] == sum(lookups_per_reader)


@BOTH
def test_many_rounds_of_racing_first_lookups_build_each_plugin_once(
    make: Callable[..., Registry],
) -> None:
    registry = make()
    factories = [Factory(f"p{k}") for k in range(1_000)]
    for k, factory in enumerate(factories):
        registry.register(f"p{k}", [f"m{k}"], factory)

    def work(_: int) -> list[Plugin]:
        return [registry.get(f"m{k}") for k in range(1_000)]  # every thread races on each

    results = run_threads(16, work)
    assert [f.calls for f in factories] == [1] * 1_000
    assert all(r == results[0] for r in results)
