"""Streaming lines of the run summary, and reading a version 1 result's streaming figures."""

from __future__ import annotations

import json
from pathlib import Path

from harborbench.engine.recorder import StreamSample, StreamStats
from harborbench.engine.summaries import merged_stream_summary, stream_summary
from harborbench.report.summary import describe_stream, stream_latency_rows
from harborbench.result import load_result
from tests.compare.test_compare import STEADY, make_run

MS = 1_000_000


def _stats(*samples: StreamSample) -> StreamStats:
    stats = StreamStats()
    for sample in samples:
        stats.record(0, 100 * MS, sample)
    return stats


WITH_USAGE = StreamSample(10 * MS, [30 * MS, 30 * MS], content_chunks=3, usage_tokens=12)
NO_USAGE = StreamSample(10 * MS, [30 * MS, 30 * MS], content_chunks=3)


def test_summary_says_where_token_counts_came_from() -> None:
    usage = stream_summary(_stats(WITH_USAGE), window_s=1.0)
    assert usage.token_source == "usage"
    line = describe_stream(usage)
    assert "output tokens: 12 (12/s), from the server's usage; 3 content chunks, 4.0 per chunk" in (
        line
    )
    assert "inter-token latency not measured" in line
    assert [label for label, _ in stream_latency_rows(usage)] == [
        "time to first token", "inter-chunk", "time per output token",
    ]  # fmt: skip

    chunks = stream_summary(_stats(NO_USAGE), window_s=1.0)
    assert chunks.token_source == "chunk_count"
    assert "COUNTED AS CHUNKS: the server sent no usage" in describe_stream(chunks)

    mixed = merged_stream_summary([usage, chunks], window_s=2.0)
    assert mixed.token_source == "mixed" and mixed.output_tokens == 15
    assert "from usage for 1 streams, COUNTED AS CHUNKS for 1" in describe_stream(mixed)


def test_summary_shows_inter_token_latency_and_missing_done_markers() -> None:
    sample = StreamSample(
        10 * MS, [30 * MS], content_chunks=2, usage_tokens=4, chunk_tokens=[1, 3],
        done_marker_missing=True,
    )  # fmt: skip
    summary = stream_summary(_stats(sample), window_s=1.0)
    assert "inter-token" in [label for label, _ in stream_latency_rows(summary)]
    line = describe_stream(summary)
    assert "1 streams ended without 'data: [DONE]'" in line and "not measured" not in line


def test_a_version_1_result_reads_its_chunk_gaps_as_inter_chunk_latency(tmp_path: Path) -> None:
    run = make_run("old", [STEADY])
    assert run.total is not None
    gaps = run.total.service_time
    data = json.loads(run.model_dump_json())
    data["schema_version"] = 1
    v1_stream = {"ttft": gaps.model_dump(), "itl": gaps.model_dump(), "tpot": gaps.model_dump(),
                 "output_tokens": 10, "output_tokens_per_s": 1.0}  # fmt: skip
    data["trials"][0]["stream"] = v1_stream
    data["total"] = data["trials"][0]  # version 1 stored a copy of the only trial
    del data["kind"]  # version 1 had no kind
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = load_result(path)
    assert result.total is not None and result.total.stream is not None
    stream = result.total.stream
    assert stream.icl == gaps  # version 1's "inter-token" figures were chunk gaps
    assert stream.itl.count == 0 and stream.token_source == "none"
