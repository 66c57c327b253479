"""Cost per request of giving every request its own body (issue 17).

Run: ``.venv/bin/python benchmarks/prompts.py [N]`` (N requests a round, default 20,000).

Measures, interleaved round by round (so machine drift hits both alike), the client-side cost
per request of the body parameters plus the client's token estimate:

- ``fixed``: one params dict reused for every request (what a run sent before issue 17);
- ``generated``: :class:`RequestFactory` with log-normal prompt lengths (median 200 tokens) and
  uniform ``max_tokens``;
- ``generated+prefix``: the same with a 100-token shared prefix;
- ``dataset``: draws from ``profiles/chat-small.jsonl``.

Also the JSON encoding of the bodies (the client does it anyway: bigger prompts cost more
there). Prints the median and min-max over the rounds, in microseconds per request, the ratio
to ``fixed``, and the load average.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harborbench.engine.prompts import RequestFactory
from harborbench.engine.request import _estimate
from harborbench.profile import RequestSpec

ROUNDS = 7
ROOT = Path(__file__).resolve().parents[1]


def contenders() -> dict[str, Callable[[], dict[str, Any]]]:
    fixed = RequestFactory(RequestSpec.model_validate({"prompt_tokens": 200}), 1).next_params()
    lengths = {
        "prompt_tokens": {"distribution": "lognormal", "median": 200, "p99": 2000},
        "max_tokens": {"distribution": "uniform", "low": 16, "high": 128},
    }
    generated = RequestFactory(RequestSpec.model_validate(lengths), 1)
    prefixed = RequestFactory(RequestSpec.model_validate({**lengths, "prefix_tokens": 100}), 1)
    dataset = RequestFactory(
        RequestSpec.model_validate({"dataset": str(ROOT / "profiles/chat-small.jsonl")}), 1
    )
    return {
        "fixed": lambda: fixed,
        "generated": generated.next_params,
        "generated+prefix": prefixed.next_params,
        "dataset": dataset.next_params,
    }


def per_request_us(make: Callable[[], dict[str, Any]], n: int, encode: bool) -> float:
    dumps = json.dumps
    start = time.perf_counter_ns()
    for _ in range(n):
        params = make()
        _estimate(params)
        if encode:
            dumps(params)
    return (time.perf_counter_ns() - start) / n / 1e3


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    makers = contenders()
    for encode in (False, True):
        times: dict[str, list[float]] = {name: [] for name in makers}
        for _ in range(ROUNDS):
            for name, make in makers.items():  # interleaved: A B C D, A B C D, ...
                times[name].append(per_request_us(make, n, encode))
        base = statistics.median(times["fixed"])
        title = "params + estimate + JSON encoding" if encode else "params + estimate"
        print(f"{title}, {n:,} requests x {ROUNDS} rounds (us per request):")
        for name, values in times.items():
            med = statistics.median(values)
            print(
                f"  {name:<17} median {med:7.2f}  [{min(values):.2f} - {max(values):.2f}]  "
                f"x{med / base:.1f} of fixed"
            )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
