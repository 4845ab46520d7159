"""A download server for the weights tests: loopback only, started by the test, with the failures a real
download meets (a corrupt file, a short body, a connection reset mid-way, a missing file)."""

from __future__ import annotations

import hashlib
import io
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
import torchvision

MODES = ("ok", "truncate", "reset")


def vgg19_state_bytes(seed: int = 123) -> bytes:
    """A torchvision-format VGG19 ``features`` state dict (80 MB), different from nstlab's "random" weights."""
    torch.manual_seed(seed)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
    buffer = io.BytesIO()
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, buffer)
    return buffer.getvalue()


def hashed_name(data: bytes, stem: str = "vgg19") -> str:
    """torchvision's naming: ``vgg19-<first 8 hex digits of the SHA-256>.pth``."""
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth"


class Server:
    """Serves ``files[name] = (bytes, mode)`` at ``url(name)``; ``requests`` lists the paths asked for."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a reset connection is the point, not news
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def add(self, data: bytes, name: str | None = None, mode: str = "ok") -> str:
        """Serve ``data`` as ``name`` (default: its hashed name); returns its URL."""
        assert mode in MODES
        name = name or hashed_name(data)
        self.files[name] = (data, mode)
        return self.url(name)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep the test output clean
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                server.requests.append(self.path)
                data, mode = server.files.get(self.path.lstrip("/"), (None, "ok"))
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not body:
                    return
                if mode == "ok":
                    self.wfile.write(data)
                    return
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                if mode == "reset":  # a TCP reset instead of a clean end of stream (closed once the handler ends)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()

        return Handler


@contextmanager
def serving() -> Iterator[Server]:
    server = Server()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    """Every file in ``folder`` (hidden temporary files included)."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
