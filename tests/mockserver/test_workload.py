"""The mock keeps up with varied workloads (issue 17): list-of-parts prompts, n choices, output
lengths from max_tokens or a distribution, and /v1/models saying any model name is accepted."""

from __future__ import annotations

import aiohttp

from tests.mockserver.conftest import StartMock
from tests.mockserver.test_app import post_chat


async def test_prompt_tokens_count_text_inside_list_of_parts(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock()
    parts = [
        {"type": "text", "text": "a" * 40},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "b" * 40},
    ]
    messages = [{"role": "system", "content": "c" * 20}, {"role": "user", "content": parts}]
    async with session.post(
        server.url + "/v1/chat/completions", json={"model": "m", "messages": messages}
    ) as r:
        body = await r.json()
    assert body["usage"]["prompt_tokens"] == (20 + 40 + 40) // 4  # the image counts nothing


async def test_n_choices_are_returned_and_counted(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(output_tokens=5)
    status, body, _ = await post_chat(session, server, n=3)
    assert status == 200
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert all(c["message"]["content"] for c in body["choices"])
    assert body["usage"]["completion_tokens"] == 15
    status, body, _ = await post_chat(session, server, n=1)
    assert status == 200 and len(body["choices"]) == 1


async def test_bad_n_or_n_with_stream_is_a_400_naming_n(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock()
    for extra in ({"n": 0}, {"n": "2"}, {"n": 129}, {"n": 2, "stream": True}):
        status, body, _ = await post_chat(session, server, **extra)
        assert status == 400, extra
        assert body["error"]["param"] == "n"


async def test_models_says_any_name_is_accepted(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock()
    async with session.get(server.url + "/v1/models") as r:
        body = await r.json()
    assert "any model name" in body["note"]
    status, answer, _ = await post_chat(session, server, model="not-in-the-list")
    assert status == 200 and answer["model"] == "not-in-the-list"


async def test_output_tokens_max_tokens_answers_exactly_max_tokens(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(output_tokens="max_tokens")
    for limit in (1, 7, 300):
        _, body, _ = await post_chat(session, server, max_tokens=limit)
        assert body["usage"]["completion_tokens"] == limit
        assert body["choices"][0]["finish_reason"] == "length"
    _, body, _ = await post_chat(session, server)  # no max_tokens: a fixed default length
    assert body["usage"]["completion_tokens"] == 16


async def test_ignore_eos_gives_max_tokens_with_a_range(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(output_tokens={"min": 2, "max": 3})
    _, body, _ = await post_chat(session, server, max_tokens=40, ignore_eos=True)
    assert body["usage"]["completion_tokens"] == 40
    _, body, _ = await post_chat(session, server, max_tokens=40)  # the range decides
    assert body["usage"]["completion_tokens"] in (2, 3)


async def test_output_tokens_from_a_seeded_distribution(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    spec = {"distribution": "uniform", "low": 10, "high": 20}
    lengths = []
    for _ in range(2):  # two servers with the same seed give the same sequence
        server = await start_mock(output_tokens=spec, seed=5)
        seq = []
        for _ in range(30):
            _, body, _ = await post_chat(session, server, max_tokens=15)
            seq.append(body["usage"]["completion_tokens"])
        lengths.append(seq)
    assert lengths[0] == lengths[1]
    assert set(lengths[0]) <= set(range(10, 16))  # drawn in [10, 20], capped by max_tokens 15
    assert len(set(lengths[0])) > 2
