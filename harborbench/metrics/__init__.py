"""Measurement math: pure, unit-testable, no printing (SPEC section 6).

Modules:
    histogram: :class:`~harborbench.metrics.histogram.LatencyHistogram`, a mergeable HDR histogram
        over nanoseconds (1 µs .. 1 h, 3 significant figures, relative error < 0.1 %).
    resources: RSS and CPU sampling of the measuring process, CPU efficiency, memory trend
        (Theil-Sen slope with its confidence interval, pass / fail / inconclusive).
    looplag: :class:`~harborbench.metrics.looplag.LoopLagMonitor`, event-loop lag.
    stats: ratio confidence intervals, rank test, minimum detectable change and verdicts for
        ``compare``.
"""
