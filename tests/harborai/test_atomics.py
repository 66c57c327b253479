"""AtomicInteger and AtomicReference: exact semantics, and exact results under many threads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from harborbench.harborai.core.optimizations.atomics import AtomicInteger, AtomicReference


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond so that a non-atomic read-modify-write would lose."""
    old_interval_s = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old_interval_s)


def run_threads(n_threads: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``n_threads`` threads released together; re-raise any error."""
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    if errors:
        raise errors[0]


def test_atomic_integer_methods_return_exact_values() -> None:
    counter = AtomicInteger(5)
    assert counter.get() == 5
    assert counter.get_and_increment() == 5
    assert counter.get() == 6
    assert counter.increment_and_get() == 7
    assert counter.decrement_and_get() == 6
    assert counter.add_and_get(10) == 16
    assert counter.add_and_get(-20) == -4
    assert counter.get_and_add(4) == -4
    assert counter.get() == 0
    counter.set(42)
    assert counter.get() == 42
    assert repr(counter) == "AtomicInteger(42)"
    assert AtomicInteger().get() == 0


def test_atomic_integer_compare_and_set_only_on_match() -> None:
    counter = AtomicInteger(3)
    assert counter.compare_and_set(4, 10) is False
    assert counter.get() == 3
    assert counter.compare_and_set(3, 10) is True
    assert counter.get() == 10


def test_atomic_reference_compares_by_identity() -> None:
    first = [1, 2]
    equal_but_distinct = [1, 2]
    ref: AtomicReference[list[int]] = AtomicReference(first)
    assert ref.get() is first
    assert ref.compare_and_set(equal_but_distinct, [9]) is False
    assert ref.get() is first
    replacement = [3]
    assert ref.compare_and_set(first, replacement) is True
    assert ref.get() is replacement
    assert ref.get_and_set(first) is replacement
    assert ref.get() is first
    ref.set(equal_but_distinct)
    assert ref.get() is equal_but_distinct


def test_increment_and_get_16_threads_x_10000_is_exact_and_values_are_unique() -> None:
    counter = AtomicInteger()
    seen: list[list[int]] = [[] for _ in range(16)]

    def work(i: int) -> None:
        out = seen[i]
        for _ in range(10_000):
            out.append(counter.increment_and_get())

    run_threads(16, work)
    assert counter.get() == 160_000
    every_value = sorted(v for values in seen for v in values)
    assert every_value == list(range(1, 160_001))  # no two threads got the same value


def test_get_and_increment_and_add_mixed_threads_exact() -> None:
    counter = AtomicInteger()

    def work(i: int) -> None:
        for _ in range(5_000):
            if i % 2:
                counter.get_and_increment()
            else:
                counter.add_and_get(3)
                counter.get_and_add(-1)

    run_threads(8, work)
    assert counter.get() == 4 * 5_000 * 1 + 4 * 5_000 * 2


def test_compare_and_set_retry_loop_loses_no_update() -> None:
    counter = AtomicInteger()

    def work(_: int) -> None:
        for _ in range(5_000):
            while True:
                current = counter.get()
                if counter.compare_and_set(current, current + 1):
                    break

    run_threads(8, work)
    assert counter.get() == 40_000


def test_atomic_reference_copy_on_write_appends_from_threads_none_lost() -> None:
    ref: AtomicReference[tuple[int, ...]] = AtomicReference(())

    def work(i: int) -> None:
        for j in range(1_000):
            item = i * 1_000 + j
            while True:
                old = ref.get()
                if ref.compare_and_set(old, (*old, item)):
                    break

    run_threads(8, work)
    assert sorted(ref.get()) == list(range(8_000))


def test_get_and_set_hands_every_value_to_exactly_one_thread() -> None:
    ref: AtomicReference[int] = AtomicReference(-1)
    received: list[list[int]] = [[] for _ in range(8)]

    def work(i: int) -> None:
        for j in range(2_000):
            received[i].append(ref.get_and_set(i * 2_000 + j))

    run_threads(8, work)
    everything = sorted([v for values in received for v in values] + [ref.get()])
    assert everything == [-1, *range(16_000)]
