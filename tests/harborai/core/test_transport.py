"""Retry-After parsing and the mapping of aiohttp errors to the client's errors."""

from __future__ import annotations

import aiohttp
import pytest

from harborbench.harborai.core.transport import map_aiohttp_error, parse_retry_after
from harborbench.harborai.errors import APIConnectionError, APITimeoutError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("2", 2.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("soon", None),
        # an HTTP-date 30 s after the injected "now" (Unix 1700000000 = Tue, 14 Nov 2023 22:13:20)
        ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),
        ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now_s=1_700_000_000.0) == expected


def test_error_mapping() -> None:
    assert isinstance(map_aiohttp_error(aiohttp.ServerTimeoutError("t")), APITimeoutError)
    assert isinstance(map_aiohttp_error(TimeoutError()), APITimeoutError)
    assert isinstance(map_aiohttp_error(aiohttp.ServerDisconnectedError()), APIConnectionError)
    assert isinstance(map_aiohttp_error(ConnectionResetError()), APIConnectionError)
    broke = map_aiohttp_error(aiohttp.ClientPayloadError("cut"))
    assert isinstance(broke, APIConnectionError) and "broke off" in str(broke)


def test_a_connection_that_broke_after_sending_may_have_been_executed() -> None:
    # Issue 11: a retry after these may repeat work the server already did.
    for exc in (
        aiohttp.ServerDisconnectedError(),
        ConnectionResetError(),
        aiohttp.ClientPayloadError("cut"),
        aiohttp.ClientOSError(104, "reset"),
    ):
        err = map_aiohttp_error(exc)
        assert isinstance(err, APIConnectionError) and err.maybe_executed, exc
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None),
        ConnectionRefusedError(111, "refused"),
    )
    never_sent = map_aiohttp_error(refused)
    assert isinstance(never_sent, APIConnectionError) and not never_sent.maybe_executed
