"""Plugin (provider) registries routed by model name: a lock-free one and a locked one.

:class:`LockFreePluginManager` is the optimized mode's registry. Its hot path, :meth:`get`,
takes no lock: it reads one immutable snapshot (a frozen record of two
:class:`types.MappingProxyType` views over dicts that nobody mutates after publication) from an
:class:`~.atomics.AtomicReference`, then the plugin's state cell, another ``AtomicReference``.
Registration builds a new snapshot (copy-on-write) and publishes it with a compare-and-set
retry loop; a plugin's first load moves its cell ``UNLOADED -> LOADING`` by compare-and-set, so
exactly one thread runs the factory while the others block on a :class:`threading.Event`
(no busy-waiting). What "atomic" means for these cells is written in :mod:`.atomics`.

:class:`LockedPluginRegistry` has the same public API behind one :class:`threading.Lock`, held
for every lookup and also while a factory runs. It is the traditional mode's registry and the
benchmark's point of comparison (``benchmarks/plugin_manager.py``).

Common semantics of both classes:

* A plugin is registered under a unique ``name`` and serves one or more model names; a model
  can be served by one plugin only (claiming another plugin's model raises ``ConfigError``).
  Registering an existing name again replaces that plugin (state back to ``UNLOADED``).
* ``lazy=True``: the factory runs on the first :meth:`get` of one of its models (or on
  :meth:`load_all`). ``lazy=False``: it runs inside :meth:`register`.
* A factory that raises leaves the plugin ``FAILED`` and the error is re-raised to the caller
  and to every thread that was waiting for that load. The next :meth:`get` tries again (a new
  load attempt), so a transient failure does not disable a provider forever.
* Counters (:meth:`statistics`) are exact, including ``lookups`` under many threads.
"""

from __future__ import annotations

import enum
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from harborbench.harborai.core.optimizations.atomics import AtomicInteger, AtomicReference
from harborbench.harborai.errors import ConfigError, UnknownModelError

P = TypeVar("P")

__all__ = ["LockFreePluginManager", "LockedPluginRegistry", "PluginState"]


class PluginState(enum.Enum):
    """Life cycle of one registered plugin."""

    UNLOADED = "unloaded"
    """Registered; the factory has not run (or a load was interrupted)."""
    LOADING = "loading"
    """One thread is running the factory; other callers wait for it."""
    LOADED = "loaded"
    """The plugin object exists and is returned by lookups."""
    FAILED = "failed"
    """The last load raised; the next lookup tries again."""


def _validated(name: str, models: Iterable[str]) -> tuple[str, ...]:
    """Check a registration; returns its model names, de-duplicated, in the given order."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"plugin name must be a non-empty string, got {name!r}")
    result: dict[str, None] = {}
    for model in models:
        if not isinstance(model, str) or not model:
            raise ConfigError(
                f"plugin {name!r}: model names must be non-empty strings, got {model!r}"
            )
        result[model] = None
    if not result:
        raise ConfigError(f"plugin {name!r} must serve at least one model")
    return tuple(result)


def _conflict(name: str, model: str, owner: str) -> ConfigError:
    return ConfigError(
        f"model {model!r} of plugin {name!r} is already served by plugin {owner!r}; "
        "a model can be routed to one plugin only"
    )


# --- per-thread lookup counting -------------------------------------------------------------


if TYPE_CHECKING:
    _OnThreadEnd = weakref.finalize[[weakref.ref["_ThreadCounter"], int], threading.Thread]


class _ThreadCounter:
    """An exact counter incremented without a shared lock: one cell per thread, summed on read.

    Each thread increments only its own one-element list, so no increment is ever lost; a
    reader sums the cells. When a thread object is garbage collected its count is folded into
    ``_retired`` and its cell dropped, so memory does not grow with the number of threads ever
    seen; when the counter itself is collected, its hooks on still-living threads are removed,
    so creating many counters does not grow memory either.
    """

    __slots__ = ("__weakref__", "_cells", "_lock", "_retired", "local")

    def __init__(self) -> None:
        self.local = threading.local()
        """Holds ``cell``, this thread's one-element list, once :meth:`cell` has run in it."""
        # id(cell) -> (cell, the finalizer that retires it when its thread is collected)
        self._cells: dict[int, tuple[list[int], _OnThreadEnd]] = {}
        self._retired = 0
        self._lock = threading.Lock()
        weakref.finalize(self, _detach_all, self._cells)

    def cell(self) -> list[int]:
        """Return this thread's cell (creating it on the thread's first call)."""
        try:
            cell: list[int] = self.local.cell
        except AttributeError:
            cell = [0]
            on_thread_end = weakref.finalize(
                threading.current_thread(), _retire_cell, weakref.ref(self), id(cell)
            )
            with self._lock:
                self._cells[id(cell)] = (cell, on_thread_end)
            self.local.cell = cell
        return cell

    def total(self) -> int:
        """Return the sum over all threads (exact once the counting threads are quiet)."""
        with self._lock:
            return self._retired + sum(cell[0] for cell, _ in self._cells.values())

    def _retire(self, cell_id: int) -> None:
        with self._lock:
            entry = self._cells.pop(cell_id, None)
            if entry is not None:
                self._retired += entry[0][0]


def _retire_cell(counter_ref: weakref.ref[_ThreadCounter], cell_id: int) -> None:
    counter = counter_ref()
    if counter is not None:
        counter._retire(cell_id)


def _detach_all(cells: dict[int, tuple[list[int], _OnThreadEnd]]) -> None:
    for _, on_thread_end in list(cells.values()):
        on_thread_end.detach()


# --- the lock-free manager ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Unloaded:
    attempt: int  # number of load attempts started so far


@dataclass(frozen=True, slots=True)
class _Loading:
    attempt: int
    done: threading.Event  # set once the cell has left this state


@dataclass(frozen=True, slots=True)
class _Loaded(Generic[P]):
    plugin: P


@dataclass(frozen=True, slots=True)
class _Failed:
    attempt: int
    error: Exception


_Cell = _Unloaded | _Loading | _Loaded[P] | _Failed


class _Slot(Generic[P]):
    """One registration: immutable fields plus an atomic state cell."""

    __slots__ = ("cell", "factory", "models", "name")

    def __init__(self, name: str, models: tuple[str, ...], factory: Callable[[], P]) -> None:
        self.name = name
        self.models = models
        self.factory = factory
        self.cell: AtomicReference[_Cell[P]] = AtomicReference(_Unloaded(0))


@dataclass(frozen=True, slots=True)
class _Snapshot(Generic[P]):
    slots: Mapping[str, _Slot[P]]  # plugin name -> slot
    routes: Mapping[str, _Slot[P]]  # model name -> slot


def _state_of(cell: _Cell[P]) -> PluginState:
    if isinstance(cell, _Loaded):
        return PluginState.LOADED
    if isinstance(cell, _Loading):
        return PluginState.LOADING
    if isinstance(cell, _Failed):
        return PluginState.FAILED
    return PluginState.UNLOADED


class LockFreePluginManager(Generic[P]):
    """Plugins routed by model name; lookups read an immutable snapshot and take no lock.

    Method: copy-on-write snapshots published by compare-and-set (as in read-copy-update),
    and a per-plugin state cell moved ``UNLOADED/FAILED -> LOADING`` by compare-and-set so
    that one thread builds each plugin; see the module docstring and :mod:`.atomics`.

    Args:
        lazy: bool, default True. True: build a plugin on the first lookup of one of its
            models (``enable_lazy_loading``). False: build it inside :meth:`register`.
    """

    def __init__(self, *, lazy: bool = True) -> None:
        self._lazy = lazy
        empty: _Snapshot[P] = _Snapshot(MappingProxyType({}), MappingProxyType({}))
        self._snapshot: AtomicReference[_Snapshot[P]] = AtomicReference(empty)
        self._lookups = _ThreadCounter()
        self._lookup_cells = self._lookups.local  # the hot path reads its cell from here
        self._registrations = AtomicInteger()
        self._cas_retries = AtomicInteger()
        self._loads = AtomicInteger()
        self._load_failures = AtomicInteger()
        self._load_waits = AtomicInteger()
        self._load_time_ns = AtomicInteger()

    @property
    def lazy(self) -> bool:
        """Whether plugins are built on first use (True) or at registration (False)."""
        return self._lazy

    def register(self, name: str, models: Iterable[str], factory: Callable[[], P]) -> None:
        """Register (or replace) plugin ``name`` serving ``models``, built by ``factory``.

        The new snapshot is built from the current one and published by compare-and-set; if
        another registration won the race the loop rebuilds from the newer snapshot and tries
        again (counted in ``cas_retries``), so no concurrent registration is lost. The factory
        is not called inside that loop.

        Args:
            name: str, unique plugin name (for example the provider name).
            models: iterable of str, the model names this plugin serves (at least one).
            factory: zero-argument callable returning the plugin object.

        Raises:
            ConfigError: empty name or model list, or a model already served by another plugin.
            Exception: with ``lazy=False``, whatever ``factory`` raised (the plugin stays
                registered in state ``FAILED``).
        """
        model_names = _validated(name, models)
        slot: _Slot[P] = _Slot(name, model_names, factory)
        while True:
            old = self._snapshot.get()
            for model in model_names:
                owner = old.routes.get(model)
                if owner is not None and owner.name != name:
                    raise _conflict(name, model, owner.name)
            slots = dict(old.slots)
            slots[name] = slot
            routes = {m: s for m, s in old.routes.items() if s.name != name}
            routes.update(dict.fromkeys(model_names, slot))
            new = _Snapshot(MappingProxyType(slots), MappingProxyType(routes))
            if self._snapshot.compare_and_set(old, new):
                break
            self._cas_retries.increment_and_get()
        self._registrations.increment_and_get()
        if not self._lazy:
            self._load(slot)

    def get(self, model: str) -> P:
        """Return the plugin serving ``model``, building it first if it is not loaded yet.

        Hot path (plugin loaded): an increment of this thread's own lookup cell, two
        lock-free reads of atomic cells and one dict lookup, with no Python-level call (the
        two reads are the single attribute load ``AtomicReference.get()`` performs, done
        inline because a method call would double the cost of a lookup). Otherwise exactly
        one caller builds the plugin and the others wait for it on an event.

        Args:
            model: str, the model name of the request.

        Returns:
            The plugin object.

        Raises:
            UnknownModelError: no registered plugin serves ``model`` (lists the known ones).
            Exception: whatever the plugin's factory raised on this load attempt.
        """
        try:
            self._lookup_cells.cell[0] += 1
        except AttributeError:  # this thread's first lookup
            self._lookups.cell()[0] += 1
        slot = self._snapshot._value.routes.get(model)  # inline AtomicReference.get()
        if slot is None:
            raise UnknownModelError(model, list(self._snapshot.get().routes))
        state = slot.cell._value  # inline AtomicReference.get()
        if type(state) is _Loaded:
            return state.plugin
        return self._load(slot)

    def _load(self, slot: _Slot[P]) -> P:
        """Slow path: load ``slot``'s plugin, or wait for the thread that is loading it."""
        while True:
            cell = slot.cell.get()
            if isinstance(cell, _Loaded):
                return cell.plugin
            if isinstance(cell, _Loading):
                self._load_waits.increment_and_get()
                cell.done.wait()
                after = slot.cell.get()
                if isinstance(after, _Failed) and after.attempt == cell.attempt:
                    raise after.error
                continue
            loading = _Loading(cell.attempt + 1, threading.Event())
            if not slot.cell.compare_and_set(cell, loading):
                self._cas_retries.increment_and_get()
                continue
            return self._build(slot, loading)

    def _build(self, slot: _Slot[P], loading: _Loading) -> P:
        """Run the factory as the winner of the ``-> LOADING`` compare-and-set."""
        start_ns = time.perf_counter_ns()
        try:
            plugin = slot.factory()
        except Exception as exc:
            slot.cell.set(_Failed(loading.attempt, exc))
            self._load_failures.increment_and_get()
            raise
        except BaseException:  # KeyboardInterrupt and the like: not the plugin's fault
            slot.cell.set(_Unloaded(loading.attempt))
            raise
        else:
            slot.cell.set(_Loaded(plugin))
            self._loads.increment_and_get()
            return plugin
        finally:
            self._load_time_ns.add_and_get(time.perf_counter_ns() - start_ns)
            loading.done.set()

    def load_all(self) -> None:
        """Build every plugin that is not loaded yet (for ``enable_lazy_loading: false``).

        Every plugin is attempted even if an earlier one fails.

        Raises:
            Exception: the first factory error met, after all plugins were attempted (the
                failed plugins are in state ``FAILED``).
        """
        first_error: Exception | None = None
        for slot in self._snapshot.get().slots.values():
            try:
                self._load(slot)
            except Exception as exc:
                if first_error is None:
                    first_error = exc
        if first_error is not None:
            raise first_error

    def state(self, name: str) -> PluginState:
        """Return the state of plugin ``name``.

        Raises:
            KeyError: no plugin of that name is registered.
        """
        slot = self._snapshot.get().slots.get(name)
        if slot is None:
            raise KeyError(name)
        return _state_of(slot.cell.get())

    def models(self) -> list[str]:
        """Return the registered model names, sorted."""
        return sorted(self._snapshot.get().routes)

    def plugin_names(self) -> list[str]:
        """Return the registered plugin names, sorted."""
        return sorted(self._snapshot.get().slots)

    def loaded_plugins(self) -> dict[str, P]:
        """Return ``{plugin name: plugin}`` for the plugins built so far (for closing them)."""
        result: dict[str, P] = {}
        for name, slot in self._snapshot.get().slots.items():
            cell = slot.cell.get()
            if isinstance(cell, _Loaded):
                result[name] = cell.plugin
        return result

    def statistics(self) -> dict[str, int | float]:
        """Return the counters.

        Returns:
            ``plugins``, ``models``, ``loaded`` (current sizes); ``lookups`` (calls of
            :meth:`get`), ``registrations``, ``cas_retries`` (compare-and-set attempts lost to
            another thread, registrations and loads together), ``loads`` (successful factory
            runs), ``load_failures``, ``load_waits`` (callers that waited for another thread's
            load), ``load_time_s`` (float, total seconds spent in factories).
        """
        snapshot = self._snapshot.get()
        loaded = sum(isinstance(s.cell.get(), _Loaded) for s in snapshot.slots.values())
        return {
            "plugins": len(snapshot.slots),
            "models": len(snapshot.routes),
            "loaded": loaded,
            "lookups": self._lookups.total(),
            "registrations": self._registrations.get(),
            "cas_retries": self._cas_retries.get(),
            "loads": self._loads.get(),
            "load_failures": self._load_failures.get(),
            "load_waits": self._load_waits.get(),
            "load_time_s": self._load_time_ns.get() / 1e9,
        }

    def clear(self) -> None:
        """Unregister every plugin (counters are kept); a lookup that already holds the old
        snapshot finishes with it."""
        self._snapshot.set(_Snapshot(MappingProxyType({}), MappingProxyType({})))


# --- the locked registry --------------------------------------------------------------------


class _Entry(Generic[P]):
    """One registration of :class:`LockedPluginRegistry`; mutated only under its lock."""

    __slots__ = ("error", "factory", "models", "name", "plugin", "state")

    def __init__(self, name: str, models: tuple[str, ...], factory: Callable[[], P]) -> None:
        self.name = name
        self.models = models
        self.factory = factory
        self.state = PluginState.UNLOADED
        self.plugin: P | None = None
        self.error: Exception | None = None


class LockedPluginRegistry(Generic[P]):
    """Plugins routed by model name behind one :class:`threading.Lock` (traditional mode).

    Every call takes the lock, and a factory runs while the lock is held, so a slow plugin
    build blocks all lookups. Same public API and semantics as :class:`LockFreePluginManager`
    (``cas_retries`` and ``load_waits`` are always 0 here).

    Args:
        lazy: bool, default True; as for :class:`LockFreePluginManager`.
    """

    def __init__(self, *, lazy: bool = True) -> None:
        self._lazy = lazy
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry[P]] = {}
        self._routes: dict[str, _Entry[P]] = {}
        self._lookups = 0
        self._registrations = 0
        self._loads = 0
        self._load_failures = 0
        self._load_time_ns = 0

    @property
    def lazy(self) -> bool:
        """Whether plugins are built on first use (True) or at registration (False)."""
        return self._lazy

    def register(self, name: str, models: Iterable[str], factory: Callable[[], P]) -> None:
        """Register (or replace) plugin ``name``; see :meth:`LockFreePluginManager.register`.

        Raises:
            ConfigError: empty name or model list, or a model already served by another plugin.
            Exception: with ``lazy=False``, whatever ``factory`` raised.
        """
        model_names = _validated(name, models)
        entry: _Entry[P] = _Entry(name, model_names, factory)
        with self._lock:
            for model in model_names:
                owner = self._routes.get(model)
                if owner is not None and owner.name != name:
                    raise _conflict(name, model, owner.name)
            self._routes = {m: e for m, e in self._routes.items() if e.name != name}
            self._routes.update(dict.fromkeys(model_names, entry))
            self._entries[name] = entry
            self._registrations += 1
            if not self._lazy:
                self._load_locked(entry)

    def get(self, model: str) -> P:
        """Return the plugin serving ``model``; see :meth:`LockFreePluginManager.get`.

        Raises:
            UnknownModelError: no registered plugin serves ``model``.
            Exception: whatever the plugin's factory raised on this load attempt.
        """
        with self._lock:
            self._lookups += 1
            entry = self._routes.get(model)
            if entry is None:
                raise UnknownModelError(model, list(self._routes))
            if entry.state is PluginState.LOADED:
                return cast(P, entry.plugin)  # set together with LOADED
            return self._load_locked(entry)

    def _load_locked(self, entry: _Entry[P]) -> P:
        """Build ``entry``'s plugin; the caller holds the lock."""
        entry.state = PluginState.LOADING
        start_ns = time.perf_counter_ns()
        try:
            plugin = entry.factory()
        except Exception as exc:
            entry.state, entry.error = PluginState.FAILED, exc
            self._load_failures += 1
            raise
        except BaseException:
            entry.state = PluginState.UNLOADED
            raise
        finally:
            self._load_time_ns += time.perf_counter_ns() - start_ns
        entry.state, entry.plugin, entry.error = PluginState.LOADED, plugin, None
        self._loads += 1
        return plugin

    def load_all(self) -> None:
        """Build every plugin not loaded yet; see :meth:`LockFreePluginManager.load_all`.

        Raises:
            Exception: the first factory error met, after all plugins were attempted.
        """
        first_error: Exception | None = None
        with self._lock:
            for entry in self._entries.values():
                if entry.state is PluginState.LOADED:
                    continue
                try:
                    self._load_locked(entry)
                except Exception as exc:
                    if first_error is None:
                        first_error = exc
        if first_error is not None:
            raise first_error

    def state(self, name: str) -> PluginState:
        """Return the state of plugin ``name``.

        Raises:
            KeyError: no plugin of that name is registered.
        """
        with self._lock:
            return self._entries[name].state

    def models(self) -> list[str]:
        """Return the registered model names, sorted."""
        with self._lock:
            return sorted(self._routes)

    def plugin_names(self) -> list[str]:
        """Return the registered plugin names, sorted."""
        with self._lock:
            return sorted(self._entries)

    def loaded_plugins(self) -> dict[str, P]:
        """Return ``{plugin name: plugin}`` for the plugins built so far (for closing them)."""
        with self._lock:
            return {
                name: cast(P, entry.plugin)
                for name, entry in self._entries.items()
                if entry.state is PluginState.LOADED
            }

    def statistics(self) -> dict[str, int | float]:
        """Return the counters, with the keys of :meth:`LockFreePluginManager.statistics`."""
        with self._lock:
            return {
                "plugins": len(self._entries),
                "models": len(self._routes),
                "loaded": sum(e.state is PluginState.LOADED for e in self._entries.values()),
                "lookups": self._lookups,
                "registrations": self._registrations,
                "cas_retries": 0,
                "loads": self._loads,
                "load_failures": self._load_failures,
                "load_waits": 0,
                "load_time_s": self._load_time_ns / 1e9,
            }

    def clear(self) -> None:
        """Unregister every plugin (counters are kept)."""
        with self._lock:
            self._entries = {}
            self._routes = {}
