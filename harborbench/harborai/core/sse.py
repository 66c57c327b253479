"""Incremental Server-Sent Events decoder, following the WHATWG HTML standard.

Source: HTML Living Standard, section 9.2 "Server-sent events", subsections "Parsing an event
stream" and "Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html). The rules implemented:

* The byte stream is decoded as UTF-8, incrementally (a multi-byte character may be split
  across chunks); invalid sequences become U+FFFD; one leading byte order mark is dropped.
* Lines end with CRLF, LF or CR. A CR at the end of one chunk followed by an LF at the start of
  the next is one line end.
* A blank line dispatches the event. A line starting with ``:`` is a comment and is ignored.
  Otherwise the field name is the text before the first ``:`` and the value the text after it,
  minus one leading space if present; a line without ``:`` is a field name with an empty value.
* ``data`` appends its value to the data buffer; several ``data`` lines are joined with
  ``\\n``. ``event`` sets the event type (``message`` when empty). ``id`` sets the last event ID
  unless the value contains U+0000; it persists for the following events, as in an
  ``EventSource``. ``retry`` is taken only if it is all ASCII digits. Other fields are ignored.
* At dispatch an empty data buffer (no ``data`` field since the last dispatch) dispatches
  nothing, but still resets the event type. A ``data:`` line with an empty value does count.
* At the end of the stream an event not terminated by a blank line is discarded (the standard's
  rule); ``SSEDecoder(dispatch_incomplete=True)`` instead dispatches it, for servers that omit the
  final blank line.

``data: [DONE]`` is ordinary data here; the client gives it its meaning.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent"]

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched server-sent event.

    Attributes:
        event: the event type; ``"message"`` when the stream gave none.
        data: the data lines joined with ``"\\n"`` (may be ``""`` for a bare ``data:`` line).
        id: the last event ID at dispatch (it persists across events, as in the standard);
            ``None`` if the stream has set none so far.
        retry_ms: the reconnection time in milliseconds from a valid ``retry`` field in this
            event's lines, or ``None``.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry_ms: int | None = None


_new = object.__new__
# Slot setters of the frozen SSEEvent: building an event through them is about 3x cheaper than
# its dataclass __init__ (one object.__setattr__ call per field); the event is the same.
_set_event = SSEEvent.__dict__["event"].__set__
_set_data = SSEEvent.__dict__["data"].__set__
_set_id = SSEEvent.__dict__["id"].__set__
_set_retry = SSEEvent.__dict__["retry_ms"].__set__


class SSEDecoder:
    """Turn the bytes of a ``text/event-stream`` response into :class:`SSEEvent` records.

    Feed the body chunk by chunk as it arrives; each call returns the events completed by
    that chunk. Work is done per chunk with C-level string operations (the UTF-8 decoder, one
    regular-expression split into lines), not per byte in Python.

    Args:
        dispatch_incomplete: bool, default False. False follows the standard: at
            :meth:`close` an event not terminated by a blank line is discarded. True dispatches
            it instead.

    Attributes:
        last_event_id: the last event ID seen so far (``None`` before any ``id`` field).
        retry_ms: the last valid ``retry`` value seen in the stream (milliseconds), or ``None``.
    """

    __slots__ = (
        "_closed",
        "_data",
        "_dispatch_incomplete",
        "_event_retry_ms",
        "_event_type",
        "_skip_lf",
        "_tail",
        "_utf8",
        "last_event_id",
        "retry_ms",
    )

    def __init__(self, *, dispatch_incomplete: bool = False) -> None:
        self._dispatch_incomplete = dispatch_incomplete
        # utf-8-sig drops one leading BOM only, even when it is split across chunks.
        self._utf8 = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._tail: list[str] = []  # text of the current, unterminated line
        self._skip_lf = False  # the previous text ended with CR: a leading LF is its pair
        self._data: list[str] = []
        self._event_type = ""
        self._event_retry_ms: int | None = None
        self._closed = False
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None

    @property
    def has_pending(self) -> bool:
        """Whether text after the last dispatched event is buffered (an unfinished event)."""
        return bool(self._data or self._event_type or any(self._tail))

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode ``chunk`` and return the events it completed, in stream order.

        Args:
            chunk: the next bytes of the stream, of any length (may be empty).

        Returns:
            The dispatched events (often empty).

        Raises:
            ValueError: the decoder was already closed.
        """
        if self._closed:
            raise ValueError("SSEDecoder.feed() called after close()")
        return self._feed_text(self._utf8.decode(chunk))

    def close(self) -> list[SSEEvent]:
        """End the stream: flush the UTF-8 decoder and return any last events.

        A truncated multi-byte character at the end becomes U+FFFD. An unfinished event is
        discarded, or dispatched when ``dispatch_incomplete`` is set. Calling it again
        returns ``[]``.

        Returns:
            The events dispatched by the end of the stream (empty in standard mode).
        """
        if self._closed:
            return []
        events = self._feed_text(self._utf8.decode(b"", True))
        self._closed = True
        last_line = "".join(self._tail)
        self._tail = []
        if self._dispatch_incomplete:
            if last_line:
                self._process_line(last_line, events)
            self._dispatch(events)
        else:
            self._data = []
            self._event_type = ""
            self._event_retry_ms = None
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if not text:
            return events
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return events
        if "\n" not in text and "\r" not in text:
            self._tail.append(text)  # no line end: the line keeps growing
            return events
        if self._tail:
            self._tail.append(text)
            text = "".join(self._tail)
        lines = _LINE_END.split(text)
        rest = lines.pop()
        self._tail = [rest] if rest else []
        self._skip_lf = text[-1] == "\r"
        data = self._data
        for line in lines:
            if not line:
                self._dispatch(events)
                data = self._data
            elif line.startswith("data:"):  # the common line, without the general parsing
                data.append(line[6:] if line[5:6] == " " else line[5:])
            else:
                self._process_line(line, events)
        return events

    def _process_line(self, line: str, events: list[SSEEvent]) -> None:
        if line[0] == ":":
            return  # comment
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event_type = value
        elif field == "id":
            if "\x00" not in value:  # an id containing NULL is ignored
                self.last_event_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._event_retry_ms = self.retry_ms = int(value)
        # any other field, and a retry value that is not all ASCII digits, is ignored

    def _dispatch(self, events: list[SSEEvent]) -> None:
        data = self._data
        if data:
            event: SSEEvent = _new(SSEEvent)  # SSEEvent(...) without the frozen __init__'s cost
            _set_event(event, self._event_type or "message")
            _set_data(event, data[0] if len(data) == 1 else "\n".join(data))
            _set_id(event, self.last_event_id)
            _set_retry(event, self._event_retry_ms)
            events.append(event)
            self._data = []
        self._event_type = ""
        self._event_retry_ms = None
