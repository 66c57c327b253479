"""One-line descriptions of a run's workload figures, shared by the Rich summary and the HTML.

Goodput, tokens (server usage beside the client's estimate), the prompts sent and, for a trace
replay, the trace's arrival times against the achieved ones. Plain text; the callers escape it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harborbench.result import RunResult, TrialResult

__all__ = [
    "describe_goodput",
    "describe_prompts",
    "describe_replay",
    "describe_tokens",
    "describe_trace_load",
    "slo_text",
]


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x * 1e3:.3f} ms" if x < 0.01 else f"{x * 1e3:.1f} ms"


def _count(spec: Any) -> str:
    """A count or distribution of a profile dump, as text (``200``, ``uniform 100-300``)."""
    if isinstance(spec, dict):
        kind = spec.get("distribution")
        if kind == "uniform":
            return f"uniform {spec.get('low')}-{spec.get('high')}"
        if kind == "normal":
            return f"normal mean {spec.get('mean')}, sd {spec.get('stddev')}"
        if kind == "lognormal":
            return f"lognormal median {spec.get('median')}, p99 {spec.get('p99')}"
        if kind == "exponential":
            return f"exponential mean {spec.get('mean')}"
        return str(spec.get("value"))
    return str(spec)


def slo_text(slo: dict[str, Any] | None) -> str:
    """The objectives of a profile's ``slo`` dump (``"ttft <= 200ms, latency <= 2s"``)."""
    if not slo:
        return ""
    names = (("ttft_max", "ttft"), ("tpot_max", "tpot"), ("latency_max", "latency"))
    return ", ".join(f"{label} <= {slo[key]}" for key, label in names if slo.get(key))


def describe_goodput(result: RunResult, t: TrialResult) -> str | None:
    """``"X ops/s: N of M successes (p%) met every objective (...)"``, or ``None`` without slo."""
    if t.goodput_ops is None or t.slo_met is None:
        return None
    share = f"{t.slo_met / t.successes:.1%}" if t.successes else "–"
    objectives = slo_text(result.profile.get("slo"))
    return (
        f"{t.goodput_ops:,.1f} ops/s: {t.slo_met:,} of {t.successes:,} successes ({share}) met "
        f"every objective ({objectives})"
    )


def describe_tokens(t: TrialResult) -> str | None:
    """Prompt and completion tokens from the server's usage, with the client's estimate."""
    tok = t.tokens
    if tok is None or (tok.with_usage == 0 and tok.without_usage == 0):
        return None
    if tok.with_usage == 0:
        return f"the server reported no usage for {tok.without_usage:,} successes"
    per = tok.with_usage
    text = (
        f"server usage: prompt {tok.prompt_tokens:,} ({tok.prompt_tokens / per:,.0f}/request), "
        f"completion {tok.completion_tokens:,} ({tok.completion_tokens / per:,.0f}/request); "
        f"client estimate of the prompts, {tok.estimate}: {tok.estimated_prompt_tokens:,}"
    )
    if tok.prompt_tokens:
        text += f" (x{tok.estimated_prompt_tokens / tok.prompt_tokens:.2f} of the server's)"
    if tok.without_usage:
        text += f"; {tok.without_usage:,} successes without usage"
    return text


def describe_prompts(profile: dict[str, Any]) -> str:
    """What the requests sent: fixed messages, generated prompts, a dataset or a trace's lengths."""
    req = profile.get("request", {})
    load = profile.get("load", {})
    max_tokens = f"max_tokens {_count(req.get('max_tokens'))}"
    prefix = req.get("prefix_tokens")
    shared = f", a shared prefix of {prefix} tokens" if prefix else ""
    if req.get("messages"):
        return f"the same messages in every request (identical bodies); {max_tokens}"
    if req.get("dataset"):
        order = req.get("dataset_order", "random")
        return (
            f"dataset {Path(str(req['dataset'])).name} ({order} order); max_tokens from its "
            f"output_tokens, else {_count(req.get('max_tokens'))}"
        )
    if load.get("trace"):
        return f"generated prompts of the trace's input lengths{shared}, unique per request; " + (
            "max_tokens from its output lengths"
        )
    if req.get("prompt_tokens") is not None:
        return (
            f"generated prompts of {_count(req['prompt_tokens'])} tokens (estimated, 4 "
            f"characters a token){shared}, unique per request; {max_tokens}"
        )
    return f"a short default prompt after a unique request tag; {max_tokens}"


def describe_trace_load(load: dict[str, Any]) -> str:
    """``"trace replay of FILE (time scale 0.5, first 100 lines)"``."""
    text = f"trace replay of {Path(str(load.get('trace'))).name}, open loop"
    scale = load.get("time_scale", 1.0)
    if scale != 1.0:
        text += f", time scale {scale:g}"
    if load.get("limit"):
        text += f", first {load['limit']} lines"
    return text


def describe_replay(t: TrialResult) -> str | None:
    """The trace's arrival times against the achieved ones, or ``None`` without a trace."""
    r = t.replay
    if r is None:
        return None
    lag = r.send_lag
    spans = ""
    if r.trace_span_s is not None and r.achieved_span_s is not None:
        spans = f"; span {r.trace_span_s:.3f} s in the trace, {r.achieved_span_s:.3f} s achieved"
    return (
        f"{r.sent_in_window:,} of {r.planned_in_window:,} trace arrivals of the window sent "
        f"({r.replayed_lines:,} of {r.trace_lines:,} trace lines planned){spans}; send lag behind "
        f"the trace times p50 {_ms(lag.p50_s)}, p99 {_ms(lag.p99_s)}, max {_ms(lag.max_s)}"
    )
