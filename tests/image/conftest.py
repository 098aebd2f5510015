"""Fixtures of the image tier (scripts/test-image): the built image, decompressed once; the test
upstream DNS server and a block-list server on the host's loopback, which the guest reaches
through qemu's gateway address."""

from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.upstream_client import TestUpstream

from . import vm

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.image)
            item.add_marker(pytest.mark.timeout(900))


@pytest.fixture(scope="session")
def image_xz() -> Path:
    """The image under test: $BURROW_IMAGE (scripts/test-image sets it to the image it built)."""
    named = os.environ.get("BURROW_IMAGE")
    if not named:
        pytest.skip("no image named: run scripts/test-image (it builds the image and sets BURROW_IMAGE)")
    path = Path(named)
    assert path.is_file(), f"BURROW_IMAGE={named} does not exist"
    links = sorted(name for _, name in socket.if_nameindex())
    assert links == ["lo"], (f"the image tier runs in a network namespace with only loopback (scripts/"
                             f"test-image does this), so the guest reaches nothing past it; here: {links}")
    missing = vm.tools_missing()
    assert not missing, f"the image tier needs {missing} (scripts/test-image installs them)"
    return path


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("image")


@pytest.fixture(scope="session")
def raw_image(image_xz, image_dir) -> Path:
    return vm.decompress(image_xz, image_dir)


@pytest.fixture(scope="session")
def upstream():
    with TestUpstream() as up:
        yield up


class ListServer:
    """Serves block lists (path → text) on 127.0.0.1; counts the requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.hits.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        """The URL as the guest sees it."""
        return f"http://{vm.GATEWAY}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def list_server():
    s = ListServer()
    yield s
    s.close()
