"""Atomic integer and reference cells with compare-and-set, for the lock-free plugin manager.

What is atomic, and why
-----------------------
Python exposes no hardware compare-and-swap instruction, so these classes build their
guarantees from two facts of CPython:

* **Reads take no lock.** ``get()`` is a single load of one object attribute. In CPython a
  single attribute load or store of an object reference can never be torn: on GIL builds the
  interpreter lock is held for the whole bytecode, and free-threaded builds (3.13t and later,
  PEP 703) keep a single load or store of an object attribute thread-safe (atomic pointer
  access plus reference counting that tolerates a concurrent store). A reader therefore sees
  either the old or the new reference, never a mixture.
* **Every write takes a short internal lock.** ``compare_and_set`` has to read, compare and
  store as one indivisible step, and the language does not promise that. The GIL is released
  only between bytecodes, and CPython 3.11 happens to check for a thread switch only at calls
  and backward jumps, so today a bare ``if self._value is expect: self._value = update`` would
  not be interrupted; but that is an implementation detail of the eval loop, not a guarantee,
  it breaks as soon as the comparison calls Python code (``__eq__``), and free-threaded builds
  have no GIL at all. Each cell therefore owns one
  :class:`threading.Lock`, held only for the few bytecodes of that read-compare-store and never
  while calling user code. ``set``, ``get_and_set`` and the integer read-modify-write methods
  take the same lock, so that a plain store can never slip between the read and the store of a
  concurrent ``compare_and_set`` and be lost.

The result is linearizable: every operation appears to happen at one instant between its call
and its return. It is *lock-free for readers only*; writers are serialised by the cell's lock
(a writer can be delayed by another writer, for at most the few bytecodes the lock is held).
On free-threaded builds the same code stays correct, because the lock is a real mutual-exclusion
lock there too; readers then truly run in parallel, and contended writers serialise on the lock.

The design follows ``java.util.concurrent.atomic`` (the method names are Java's).
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["AtomicInteger", "AtomicReference"]


class AtomicInteger:
    """An ``int`` cell with atomic read-modify-write operations (see the module docstring).

    Args:
        value: the initial value (int, default 0).
    """

    __slots__ = ("_lock", "_value")

    def __init__(self, value: int = 0) -> None:
        self._value = value
        self._lock = threading.Lock()

    def get(self) -> int:
        """Return the current value; takes no lock (a single attribute load)."""
        return self._value

    def set(self, value: int) -> None:
        """Store ``value`` (int) under the cell's lock, ordered with every other write."""
        with self._lock:
            self._value = value

    def compare_and_set(self, expect: int, update: int) -> bool:
        """Store ``update`` if the current value equals ``expect``, as one atomic step.

        Args:
            expect: the value the caller last read (compared with ``==``).
            update: the value to store when the comparison holds.

        Returns:
            True if the value was ``expect`` and is now ``update``; False if another thread
            changed it first (the value is then left untouched).
        """
        with self._lock:
            if self._value == expect:
                self._value = update
                return True
            return False

    def get_and_increment(self) -> int:
        """Add 1 atomically; returns the value *before* the increment."""
        with self._lock:
            old = self._value
            self._value = old + 1
            return old

    def increment_and_get(self) -> int:
        """Add 1 atomically; returns the value *after* the increment."""
        with self._lock:
            self._value += 1
            return self._value

    def decrement_and_get(self) -> int:
        """Subtract 1 atomically; returns the value *after* the decrement."""
        with self._lock:
            self._value -= 1
            return self._value

    def add_and_get(self, delta: int) -> int:
        """Add ``delta`` (int, may be negative) atomically; returns the value after the add."""
        with self._lock:
            self._value += delta
            return self._value

    def get_and_add(self, delta: int) -> int:
        """Add ``delta`` (int, may be negative) atomically; returns the value before the add."""
        with self._lock:
            old = self._value
            self._value = old + delta
            return old

    def __repr__(self) -> str:
        return f"AtomicInteger({self._value})"


class AtomicReference(Generic[T]):
    """A cell holding one object reference, with identity compare-and-set (module docstring).

    The stored objects should be immutable (a tuple, a frozen dataclass, a
    :class:`types.MappingProxyType` over a dict nobody else holds): the cell makes the *swap*
    atomic, not changes made inside the object afterwards.

    :meth:`get` is exactly one load of the ``_value`` slot. A hot path inside this package
    (``LockFreePluginManager.get``) performs that same load inline to save a Python call; it
    never stores to ``_value`` directly.

    Args:
        value: the initial reference.
    """

    __slots__ = ("_lock", "_value")

    def __init__(self, value: T) -> None:
        self._value = value
        self._lock = threading.Lock()

    def get(self) -> T:
        """Return the current reference; takes no lock (a single attribute load)."""
        return self._value

    def set(self, value: T) -> None:
        """Store ``value`` under the cell's lock, ordered with every other write."""
        with self._lock:
            self._value = value

    def compare_and_set(self, expect: T, update: T) -> bool:
        """Store ``update`` if the current reference *is* ``expect``, as one atomic step.

        The comparison is by identity (``is``), as in Java's ``AtomicReference``: two equal
        but distinct snapshots are different versions.

        Args:
            expect: the reference the caller last read with :meth:`get`.
            update: the reference to store when the comparison holds.

        Returns:
            True if the swap happened; False if another thread stored a different reference
            first (the cell is then left untouched and the caller usually retries).
        """
        with self._lock:
            if self._value is expect:
                self._value = update
                return True
            return False

    def get_and_set(self, value: T) -> T:
        """Store ``value`` atomically and return the reference it replaced."""
        with self._lock:
            old = self._value
            self._value = value
            return old

    def __repr__(self) -> str:
        return f"AtomicReference({self._value!r})"
