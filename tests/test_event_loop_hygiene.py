"""The suite itself leaks no event loop (see ``_no_implicit_event_loop`` in conftest.py)."""

from __future__ import annotations

import asyncio
import gc


def test_asyncio_run_in_a_sync_test_leaves_no_unclosed_loop() -> None:
    # Without the conftest fixture, the loop the looptime plugin made the policy create is
    # replaced here and collected unclosed: a ResourceWarning, an error under this suite.
    async def nothing() -> None:
        pass

    asyncio.run(nothing())
    gc.collect()
