"""Dataset and trace files: every refusal with its exact message, the cache, and the replay
figures of a trial."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harborbench import files
from harborbench.counts import MAX_COUNT
from harborbench.engine.dataset import (
    MAX_DATASET_LINES,
    DatasetEntry,
    DatasetError,
    _entry,
    jsonl_objects,
    load_dataset,
    text_chars,
)
from harborbench.engine.recorder import SendLog
from harborbench.engine.schedule import trace_plan
from harborbench.engine.summaries import latency_summary
from harborbench.engine.trace import MAX_OFFSET_NS, Trace, _count, load_trace, replay_figures


def read_jsonl_objects(path: Path, **kw: Any) -> list[tuple[int, Any]]:
    return [(number, obj) for number, _, obj in jsonl_objects(path, **kw)]


def entry(obj: Any, where: str) -> DatasetEntry:
    return _entry(obj, where, json.dumps(obj).encode())


def lines(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_text_characters_of_a_content() -> None:
    assert text_chars("abcd") == 4
    parts = [{"type": "text", "text": "ab"}, {"type": "image_url", "image_url": "x"},
             {"text": 5}, "loose", {"text": "cde"}]  # fmt: skip
    assert text_chars(parts) == 5
    assert text_chars(None) == 0 and text_chars(7) == 0 and text_chars([]) == 0


def refused(obj: Any) -> str:
    with pytest.raises(DatasetError) as err:
        entry(obj, "f:3")
    return str(err.value)


def test_dataset_entries_and_their_refusals() -> None:
    e = entry({"prompt": "hello", "output_tokens": 1}, "f:1")
    assert e.messages == ({"role": "user", "content": "hello"},)
    assert (e.output_tokens, e.chars) == (1, 5)
    raw = [{"role": "system", "content": "ab"},
           {"role": "user", "content": [{"type": "text", "text": "cde"}]}]  # fmt: skip
    m = entry({"messages": raw}, "f:2")
    assert m.messages == tuple(raw) and m.messages[0] is not raw[0]
    assert (m.output_tokens, m.chars) == (None, 5)
    for role in ("system", "user", "assistant", "tool", "developer"):
        entry({"messages": [{"role": role, "content": "x"}]}, "f")
    assert refused([1]) == "f:3: a line must be a JSON object, not list"
    assert refused({"prompt": "a", "zeta": 1, "beta": 2}) == (
        "f:3: unknown key 'beta'; a line has 'prompt' or 'messages', and optionally 'output_tokens'"
    )
    both = "f:3: give exactly one of 'prompt' (a string) or 'messages'"
    assert refused({"prompt": "a", "messages": []}) == both
    assert refused({"output_tokens": 3}) == both
    assert refused({"prompt": ""}) == "f:3: 'prompt' must be a non-empty string"
    assert refused({"prompt": 5}) == "f:3: 'prompt' must be a non-empty string"
    bad: Any
    for bad in ([], "x", None):
        assert refused({"messages": bad}) == "f:3: 'messages' must be a non-empty list of messages"
    assert refused({"messages": [{"role": "user", "content": "a"}, {"role": "robot"}]}) == (
        "f:3: messages[1] needs a 'role' of system, user, assistant, tool, developer"
    )
    assert refused({"messages": ["user"]}).startswith("f:3: messages[0] needs a 'role'")
    assert refused({"messages": [{"role": "user", "content": 5}]}) == (
        "f:3: messages[0].content must be a string or a list of parts"
    )
    assert refused({"messages": [{"role": "user"}]}).startswith("f:3: messages[0].content")
    for bad_out in (0, -1, True, 2.0, "3"):
        assert refused({"prompt": "a", "output_tokens": bad_out}) == (
            "f:3: 'output_tokens' must be a whole number >= 1"
        )


def test_reading_json_lines(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('\n{"a": 1}\n   \n[2]\n', encoding="utf-8")
    assert read_jsonl_objects(f) == [(2, {"a": 1}), (4, [2])]
    assert read_jsonl_objects(f, max_bytes=f.stat().st_size) == [(2, {"a": 1}), (4, [2])]


def read_refused(path: Path, **kw: Any) -> str:
    with pytest.raises(DatasetError) as err:
        read_jsonl_objects(path, **kw)
    return str(err.value)


def test_reading_json_lines_refusals(tmp_path: Path) -> None:
    missing = tmp_path / "none.jsonl"
    assert read_refused(missing) == f"{missing}: no such file"
    assert read_refused(tmp_path) == (
        f"{tmp_path}: is a folder, not a regular file; give the path of a JSON-lines file"
    )
    big = tmp_path / "big.jsonl"
    big.write_text('{"a": 1}\n' * 300_000, encoding="utf-8")  # 2.7 MB
    assert read_refused(big, max_bytes=2**20) == (
        f"{big}: is larger than 1 MiB, the most read; take a sample of it"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n\n{"a": }\n', encoding="utf-8")
    assert read_refused(bad) == f"{bad}:3: not valid JSON (Expecting value, column 7)"
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"a": "\xe9"}\n')
    assert read_refused(latin) == f"{latin}:1: not UTF-8 text"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    assert read_refused(empty) == (f"{empty}: the file has no lines; write one JSON object a line")


def test_devices_and_fifos_are_refused_without_reading(tmp_path: Path) -> None:
    # /dev/zero reports size 0 and never ends; a FIFO's open blocks until a writer comes.
    assert read_refused(Path("/dev/zero")) == (
        "/dev/zero: is a device, not a regular file; give the path of a JSON-lines file"
    )
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    assert read_refused(fifo) == (
        f"{fifo}: is a FIFO (named pipe), not a regular file; give the path of a JSON-lines file"
    )
    with pytest.raises(DatasetError, match="is a device, not a regular file"):
        load_dataset("/dev/zero")
    with pytest.raises(DatasetError, match="is a FIFO"):
        load_trace(fifo)


def test_deep_nesting_on_a_line_is_refused_naming_the_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"prompt": "a"}\n' + '{"a":' * 100_000 + "1" + "}" * 100_000 + "\n")
    assert read_refused(deep) == (
        f"{deep}:2: the JSON nests too deeply to be read; a line is one flat object"
    )
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"a":' * 50 + "1" + "}" * 50 + "\n", encoding="utf-8")
    assert read_jsonl_objects(nested)[0][0] == 1  # ordinary nesting is read


def test_the_read_stops_at_the_limit_when_the_size_lies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file that grows after its stat (or a filesystem that reports no size) is read up to
    # the limit plus one byte, then refused: the size check alone is not what bounds memory.
    monkeypatch.setattr(files, "_check", lambda st, max_bytes: None)
    one_line = tmp_path / "one.jsonl"
    one_line.write_text('{"prompt": "' + "x" * 5000 + '"}', encoding="utf-8")
    assert read_refused(one_line, max_bytes=1000) == (
        f"{one_line}: is larger than 1,000 bytes, the most read; take a sample of it"
    )
    many = tmp_path / "many.jsonl"
    many.write_text('{"a": 1}\n' * 1000, encoding="utf-8")  # 9,000 bytes
    assert "is larger than" in read_refused(many, max_bytes=8999)
    assert len(read_jsonl_objects(many, max_bytes=9000)) == 1000
    with pytest.raises(files.InputFileError, match="is larger than 1,000 bytes"):
        files.read_bounded(one_line, 1000)
    assert len(files.read_bounded(one_line, 5014)) == 5014


def test_datasets_are_cached_until_the_file_changes(tmp_path: Path) -> None:
    f = lines(tmp_path / "d.jsonl", [{"prompt": "one"}])
    first = load_dataset(f)
    assert first.path == str(f.resolve())
    assert [e.messages[0]["content"] for e in first.entries] == ["one"]
    assert load_dataset(str(f)) is first
    lines(f, [{"prompt": "one"}, {"prompt": "two"}])
    assert [e.messages[0]["content"] for e in load_dataset(f).entries] == ["one", "two"]
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "none.jsonl")
    with pytest.raises(DatasetError, match=r"d2.jsonl:2: unknown key"):
        load_dataset(lines(tmp_path / "d2.jsonl", [{"prompt": "a"}, {"x": 1}]))


def test_trace_counts() -> None:
    assert _count({"k": 1}, "k", "w") == 1
    assert _count({"k": MAX_COUNT}, "k", "w") == MAX_COUNT
    for bad in (0, MAX_COUNT + 1, True, 1.0, "2", None):
        with pytest.raises(DatasetError) as err:
            _count({"k": bad}, "k", "f:2")
        assert str(err.value) == f"f:2: 'k' must be a whole number of tokens, 1 to {MAX_COUNT}"


def row(ts: Any, i: int = 1, o: int = 1) -> dict[str, Any]:
    return {"timestamp": ts, "input_length": i, "output_length": o}


def trace_refused(path: Path, unit: str = "ms") -> str:
    with pytest.raises(DatasetError) as err:
        load_trace(path, unit)  # type: ignore[arg-type]
    return str(err.value)


def test_trace_files_and_their_refusals(tmp_path: Path) -> None:
    f = lines(tmp_path / "t.jsonl", [row(1000, 3, 4), row(1000.5, 5, 6), row(1002, 7, 8)])
    t = load_trace(f)
    assert t.path == str(f.resolve())
    assert t.offsets_ns.tolist() == [0, 500_000, 2_000_000]  # milliseconds by default
    assert t.offsets_ns.dtype == np.int64
    assert (t.input_tokens.tolist(), t.output_tokens.tolist()) == ([3, 5, 7], [4, 6, 8])
    assert len(t) == 3
    assert load_trace(f) is t  # cached
    assert load_trace(f, "s").offsets_ns.tolist() == [0, 500_000_000, 2_000_000_000]
    g = tmp_path / "g.jsonl"
    assert (
        trace_refused(lines(g, [row(0), [1]])) == f"{g.resolve()}:2: a line must be a JSON object"
    )
    for bad in (True, "1", None):
        assert trace_refused(lines(g, [row(bad)])) == (
            f"{g.resolve()}:1: 'timestamp' must be a number (ms from the start)"
        )
    g.write_text('{"timestamp": NaN, "input_length": 1, "output_length": 1}\n')
    assert (
        trace_refused(g, "s") == f"{g.resolve()}:1: 'timestamp' must be a number (s from the start)"
    )
    assert trace_refused(lines(g, [row(5), row(5), row(4.5)])) == (
        f"{g.resolve()}:3: timestamp 4.5 is before the previous line's 5; sort the trace by "
        "timestamp"
    )
    assert (
        trace_refused(tmp_path / "none.jsonl")
        == f"{(tmp_path / 'none.jsonl').resolve()}: no such file"
    )


def test_scaled_traces() -> None:
    t = Trace("p", np.array([0, 3, 10], dtype=np.int64), np.array([1, 2, 3], dtype=np.int64),
              np.array([4, 5, 6], dtype=np.int64))  # fmt: skip
    same = t.scaled(1.0, None)
    assert same.offsets_ns.tolist() == [0, 3, 10] and same.path == "p"
    assert t.scaled(0.5, None).offsets_ns.tolist() == [0, 2, 5]  # rint: 1.5 -> 2
    two = t.scaled(2.0, 2)
    assert two.offsets_ns.tolist() == [0, 6]
    assert (two.input_tokens.tolist(), two.output_tokens.tolist()) == ([1, 2], [4, 5])
    assert len(t.scaled(1.0, 99)) == 3


def test_replay_figures_of_a_window() -> None:
    ms = 1_000_000
    offsets = np.array([0, 900, 1000, 1500, 2000, 2500], dtype=np.int64) * ms
    replayed = Trace("t.jsonl", offsets, np.ones(6, dtype=np.int64), np.ones(6, dtype=np.int64))
    plan = trace_plan(warmup_s=1.0, window_s=1.0, offsets_ns=offsets)
    sends = SendLog()
    sends.lag.record_many_ns([1000, 1500])
    sends.first_intended_ns, sends.last_intended_ns = 1000 * ms, 1500 * ms
    sends.first_sent_ns, sends.last_sent_ns = 1001 * ms, 1503 * ms
    f = replay_figures("t.jsonl", 9, replayed, 0.5, plan, sends)
    assert (f.trace, f.trace_lines, f.replayed_lines, f.time_scale) == ("t.jsonl", 9, 6, 0.5)
    assert f.planned_in_window == 2  # 1.0 s and 1.5 s; 2.0 s is past the end
    assert f.sent_in_window == 2
    assert f.trace_span_s == pytest.approx(0.5, abs=1e-12)
    assert f.achieved_span_s == pytest.approx(0.502, abs=1e-12)
    assert f.send_lag == latency_summary(sends.lag)
    nothing = replay_figures("t.jsonl", 9, replayed, 0.5, plan, SendLog())
    assert (nothing.trace_span_s, nothing.achieved_span_s, nothing.sent_in_window) == (
        None, None, 0,
    )  # fmt: skip
    half = SendLog(first_intended_ns=1, first_sent_ns=2)
    partial = replay_figures("t.jsonl", 9, replayed, 0.5, plan, half)
    assert (partial.trace_span_s, partial.achieved_span_s) == (None, None)


def test_a_changed_trace_file_is_read_again(tmp_path: Path) -> None:
    f = lines(tmp_path / "t.jsonl", [row(0), row(10)])
    assert len(load_trace(f)) == 2
    lines(f, [row(0), row(10), row(20)])
    os.utime(f, ns=(1, 1))
    assert len(load_trace(f)) == 3


def test_a_path_that_cannot_be_read_is_named_without_a_fix(tmp_path: Path) -> None:
    # A path through a regular file fails with ENOTDIR: "unreadable", the one reason with no
    # fix appended (root reads every file, so permissions cannot make one here).
    f = lines(tmp_path / "d.jsonl", [{"prompt": "one"}])
    under = f / "x.jsonl"
    expected = f"{under}: cannot be read: {os.strerror(errno.ENOTDIR)}"
    assert read_refused(under) == expected
    with pytest.raises(DatasetError) as err:
        load_dataset(under)
    assert str(err.value) == expected
    assert trace_refused(under) == expected


def same_mtime(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_a_dataset_rewritten_with_its_old_mtime_is_read_again_by_its_size(
    tmp_path: Path,
) -> None:
    f = lines(tmp_path / "d.jsonl", [{"prompt": "one"}])
    before = f.stat().st_mtime_ns
    assert len(load_dataset(f).entries) == 1
    lines(f, [{"prompt": "one"}, {"prompt": "two"}])
    same_mtime(f, before)
    assert f.stat().st_mtime_ns == before
    assert [e.messages[0]["content"] for e in load_dataset(f).entries] == ["one", "two"]


def test_a_trace_rewritten_with_its_old_mtime_or_size_is_read_again(tmp_path: Path) -> None:
    f = lines(tmp_path / "t.jsonl", [row(0), row(10)])
    before = f.stat().st_mtime_ns
    assert load_trace(f).offsets_ns.tolist() == [0, 10_000_000]
    lines(f, [row(0), row(10), row(20)])  # a new size, the old mtime
    same_mtime(f, before)
    assert load_trace(f).offsets_ns.tolist() == [0, 10_000_000, 20_000_000]
    size = f.stat().st_size
    lines(f, [row(0), row(10), row(30)])  # the same size, a new mtime
    same_mtime(f, before + 1_000_000_000)
    assert f.stat().st_size == size
    assert load_trace(f).offsets_ns.tolist() == [0, 10_000_000, 30_000_000]


def test_a_timestamp_too_far_from_the_first_is_refused_in_full(tmp_path: Path) -> None:
    g = tmp_path / "far.jsonl"
    where = f"{g.resolve()}:2"
    # an integer too large for a float, and a float whose offset in ns overflows
    assert trace_refused(lines(g, [row(0), row(10**400)])) == (
        f"{where}: 'timestamp' is too far from the first line's to be held as a time (ms from "
        "the start); is load.timestamp_unit right?"
    )
    assert trace_refused(lines(g, [row(0), row(1e305)]), "s") == (
        f"{where}: 'timestamp' is too far from the first line's to be held as a time (s from "
        "the start); is load.timestamp_unit right?"
    )


def test_scaling_keeps_the_exact_times_of_arrivals_held_at_the_maximum() -> None:
    ones = np.ones(2, dtype=np.int64)
    # 5e9 s (about 158 years) is beyond 2**62 ns, so the offset is held; the exact time is kept
    t = Trace("p", np.array([0, MAX_OFFSET_NS], dtype=np.int64), ones, ones,
              np.array([0.0, 5e18]))  # fmt: skip
    assert t.last_offset_s == 5e9
    same = t.scaled(1.0, None)
    assert same.exact_ns is not None and same.exact_ns.tolist() == [0.0, 5e18]
    assert same.last_offset_s == 5e9 and same.offsets_ns.tolist() == [0, MAX_OFFSET_NS]
    assert t.scaled(1.0, 1).exact_ns is not None
    half = t.scaled(0.5, None)  # scaled from the exact time, not from the held one
    assert half.offsets_ns.tolist() == [0, 2_500_000_000_000_000_000]
    assert half.offsets_ns.dtype == np.int64
    assert half.exact_ns is not None and half.exact_ns.tolist() == [0.0, 2.5e18]
    assert half.last_offset_s == 2.5e9
    exact = Trace("p", np.array([0, 3], dtype=np.int64), ones, ones)  # no exact times
    assert exact.scaled(1.0, None).exact_ns is None
    doubled = exact.scaled(2.0, None)
    assert doubled.exact_ns is not None and doubled.exact_ns.tolist() == [0.0, 6.0]
    assert doubled.offsets_ns.tolist() == [0, 6]


def test_counting_lines_on_the_bytes(tmp_path: Path) -> None:
    f = tmp_path / "c.jsonl"
    for text, count in (("", 0), ("\n", 1), ("a", 1), ("a\n", 1), ("a\nb", 2), ("\n\n\n", 3)):
        f.write_bytes(text.encode())
        assert files.count_lines(f, 10) == count, text
    f.write_bytes(b"x\n" * 2**20)  # 2 MiB: more than one read of 1 MiB
    assert files.count_lines(f, 2**21) == 2**20
    with pytest.raises(files.InputFileError, match="is larger than 2,097,151 bytes"):
        files.count_lines(f, 2**21 - 1)


def test_a_file_of_too_many_lines_is_refused_before_a_line_is_parsed(tmp_path: Path) -> None:
    # 1,000,001 lines whose first is not JSON: the count refuses the file, not line 1.
    assert MAX_DATASET_LINES == 1_000_000
    many = tmp_path / "many.jsonl"
    many.write_bytes(b"{oops\n" + b"\n" * MAX_DATASET_LINES)
    expected = (
        f"{many}: 1,000,001 lines, more than the limit of 1,000,000; take a sample of it: "
        "shuf -n 100000 many.jsonl > sample.jsonl"
    )
    with pytest.raises(DatasetError) as err:
        load_dataset(many)
    assert str(err.value) == expected
    assert trace_refused(many) == (
        f"{many}: 1,000,001 lines, more than the limit of 1,000,000; replay a part of it: "
        "head -n 100000 many.jsonl > part.jsonl"
    )
    # The limit itself is read: 999,999 blank lines and one prompt.
    at = tmp_path / "at.jsonl"
    at.write_bytes(b"\n" * (MAX_DATASET_LINES - 1) + b'{"prompt": "a"}')
    assert [e.body for e in load_dataset(at).entries] == ["a"]


def test_the_line_limit_on_both_sides(tmp_path: Path) -> None:
    f = lines(tmp_path / "d.jsonl", [{"a": 1}, {"a": 2}, {"a": 3}])
    assert len(read_jsonl_objects(f, max_lines=3)) == 3
    assert read_refused(f, max_lines=2, sample="cut it") == (
        f"{f}: 3 lines, more than the limit of 2; cut it"
    )


def test_a_line_growing_the_file_after_its_count_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harborbench.engine import dataset

    f = lines(tmp_path / "d.jsonl", [{"a": 1}, {"a": 2}, {"a": 3}])
    monkeypatch.setattr(dataset, "count_lines", lambda path, max_bytes: 2)
    assert read_refused(f, max_lines=2) == f"{f}: more than 2 lines; take a sample of it"


def test_a_key_given_twice_on_a_line_is_refused_naming_the_line(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('{"prompt": "a"}\n{"prompt": "hi", "prompt": "yo"}\n', encoding="utf-8")
    expected = f"{f}:2: the key 'prompt' is given twice in an object; keep one"
    assert read_refused(f) == expected
    with pytest.raises(DatasetError) as err:
        load_dataset(f)
    assert str(err.value) == expected
    nested = tmp_path / "n.jsonl"
    nested.write_text(
        '{"messages": [{"role": "user", "content": "a", "role": "system"}]}\n', encoding="utf-8"
    )
    assert (
        read_refused(nested) == f"{nested}:1: the key 'role' is given twice in an object; keep one"
    )
    t = tmp_path / "t.jsonl"
    t.write_text('{"timestamp": 0, "input_length": 1, "output_length": 1, "timestamp": 5}\n')
    assert trace_refused(t) == f"{t}:1: the key 'timestamp' is given twice in an object; keep one"
    same_keys_apart = tmp_path / "ok.jsonl"
    same_keys_apart.write_text('{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}\n', encoding="utf-8")
    assert read_jsonl_objects(same_keys_apart) == [(1, {"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]})]


def test_an_entry_keeps_its_prompt_or_the_bytes_of_its_messages_line(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    message_line = '{"messages": [{"role": "user", "content": [{"type": "text", "text": "hé"}]}]}'
    f.write_text(f'{{"prompt": "hi", "output_tokens": 3}}\n{message_line}\n', encoding="utf-8")
    prompt, messages = load_dataset(f).entries
    assert (prompt.body, prompt.output_tokens) == ("hi", 3)
    assert prompt.messages == ({"role": "user", "content": "hi"},)
    assert messages.body == (message_line + "\n").encode()
    assert messages.output_tokens is None
    parts = [{"type": "text", "text": "hé"}]
    assert messages.messages == ({"role": "user", "content": parts},)
    assert messages.chars == 2 and prompt.chars == 2
    assert messages.messages[0] is not messages.messages[0]  # parsed again: a request's own


def traced_peak(load: Any, path: Path) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        load(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_of_a_dataset_is_about_its_size_plus_a_little_a_line(tmp_path: Path) -> None:
    # Before: every line's parsed objects were kept (and all lines parsed before any entry was
    # made): about 700 bytes a line of {"prompt": "hi"}, and 64 bytes for each 3-byte {} part.
    n = 20_000
    short = tmp_path / "short.jsonl"
    short.write_text('{"prompt":"hi"}\n' * n, encoding="utf-8")
    assert traced_peak(load_dataset, short) < 200 * n  # before: 680; now 110 with a 1 MiB read
    parts = tmp_path / "parts.jsonl"
    line = '{"messages":[{"role":"user","content":[' + ",".join(["{}"] * 300) + "]}]}\n"
    parts.write_text(line * 2_000, encoding="utf-8")  # 1.8 MB; 38 MB parsed and kept
    assert traced_peak(load_dataset, parts) < 2 * parts.stat().st_size


def test_memory_of_a_trace_is_its_arrays_not_its_parsed_lines(tmp_path: Path) -> None:
    n = 20_000
    t = lines(tmp_path / "t.jsonl", [row(i, 10, 5) for i in range(n)])
    assert len(load_trace(t)) == n
    os.utime(t, ns=(1, 1))  # read again, under the tracer
    assert traced_peak(load_trace, t) < 200 * n  # before: 530 a line; now 3 arrays, 1 MiB read
