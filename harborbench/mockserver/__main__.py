"""``python -m harborbench.mockserver``: the mock server's child process, started by
:class:`~harborbench.mockserver.process.MockServer`.

It imports only the server (not the command-line interface and its statistics libraries), so
the child is up sooner. Options (all optional)::

    --host 127.0.0.1  --port 0  --settings-json '{"latency": "10ms"}'  --watch-stdin

The first line printed is the bound URL. Invalid settings print one line on stderr and exit 2;
an address that cannot be bound, exit 2 as well (the codes of ``harborbench serve``).
People run ``harborbench serve``, which has flags for every setting.
"""

from __future__ import annotations

import argparse
import json
import sys

from pydantic import ValidationError

from harborbench.errors import EXIT_BAD_INPUT
from harborbench.mockserver.server import run_server
from harborbench.mockserver.settings import MockSettings, settings_problems


def main(argv: list[str] | None = None) -> int:
    """Parse the options, serve until SIGINT/SIGTERM (or stdin EOF) and return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m harborbench.mockserver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--settings-json", default="{}")
    parser.add_argument("--watch-stdin", action="store_true")
    args = parser.parse_args(argv)
    try:
        # The same validation as `harborbench serve --settings-json` (Python mode).
        settings = MockSettings.model_validate(json.loads(args.settings_json))
    except ValidationError as exc:
        print(f"error: {settings_problems(exc, '--settings-json')}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as exc:  # not JSON
        print(f"error: --settings-json is not a JSON object: {exc}.", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        run_server(settings, args.host, args.port, watch_stdin=args.watch_stdin)
    except OSError as exc:
        print(
            f"error: cannot bind {args.host}:{args.port}: {exc.strerror or exc}.", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
