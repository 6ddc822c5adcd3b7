"""Start localstripe on a socket inherited from the test process (127.0.0.1 only).

localstripe's own CLI binds every interface and pickles its store to a fixed path in /tmp that
parallel runs would share; this launcher serves the same aiohttp app on the inherited loopback
socket and keeps the store in memory. It runs as a separate process because localstripe is GPL
software we talk to over HTTP, never import into our code.
"""

from __future__ import annotations

import socket
import sys

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    listening = socket.socket(fileno=int(sys.argv[1]))
    resources.Store.dump_to_disk = lambda self: None  # in-memory store, no shared pickle
    web.run_app(server.app, sock=listening, print=None, handle_signals=True)


if __name__ == "__main__":
    main()
