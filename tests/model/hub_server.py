"""A local stand-in for the Hugging Face hub's file API, serving the repositories it is given.

It answers what ``huggingface_hub`` asks of a model repository: the listing
(``GET /api/models/ORG/NAME[/revision/REV]``) and the files (``HEAD``/``GET
/ORG/NAME/resolve/REV/FILE`` with ``X-Repo-Commit`` and ``ETag``), and the hub's 404s with their
``X-Error-Code``. Point ``HF_ENDPOINT`` at ``url``; ``requests`` records every path asked.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class HubServer:
    repos: Mapping[str, Mapping[str, bytes]]  # repo id -> file name -> content
    commit: str
    url: str = ""
    requests: list[str] = field(default_factory=list)


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

        def _send(self, status: int, body: bytes, headers: Mapping[str, str], head: bool) -> None:
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _answer(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append(f"{self.command} {path}")
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"]:
                repo = "/".join(parts[2:4])
                if repo not in hub.repos:
                    self._send(404, b"{}", {"X-Error-Code": "RepoNotFound"}, head)
                    return
                info = {"id": repo, "sha": hub.commit,
                        "siblings": [{"rfilename": name} for name in hub.repos[repo]]}
                self._send(200, json.dumps(info).encode(),
                           {"Content-Type": "application/json"}, head)
                return
            repo, name = "/".join(parts[:2]), "/".join(parts[4:])
            if len(parts) < 5 or parts[2] != "resolve" or repo not in hub.repos:
                self._send(404, b"", {"X-Error-Code": "RepoNotFound"}, head)
                return
            files = hub.repos[repo]
            if name not in files:
                self._send(404, b"", {"X-Error-Code": "EntryNotFound",
                                      "X-Repo-Commit": hub.commit}, head)
                return
            body = files[name]
            etag = hashlib.sha256(body).hexdigest()
            self._send(200, body, {"X-Repo-Commit": hub.commit, "ETag": f'"{etag}"',
                                   "Content-Type": "application/octet-stream"}, head)

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def do_GET(self) -> None:
            self._answer(head=False)

    return Handler


@contextmanager
def serve_hub(repos: Mapping[str, Mapping[str, bytes]], commit: str) -> Iterator[HubServer]:
    """Serve ``repos`` at one ``commit`` on a free local port until the block ends."""
    hub = HubServer(repos, commit)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
