"""Sockets made in an emulated host's namespace from the engine's process (cdnlab.net.netns):
they reach what that host reaches, the engine's own namespace is left as it was, and HTTP
through them works."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from cdnlab.net.emulation import Emulation
from cdnlab.net.netns import HostHTTPConnection, socket_in
from cdnlab.topology.spec import parse_topology

pytestmark = pytest.mark.root

PAIR = {"name": "pair", "nodes": {"a": "server", "b": "client"}, "links": [{"a": "a", "b": "b"}]}


@pytest.fixture(scope="module")
def pair() -> Iterator[Emulation]:
    with Emulation(parse_topology(PAIR, "pair")) as emu:
        yield emu


def test_a_socket_made_in_a_host_reaches_its_neighbour_and_nothing_else_moves(
        pair: Emulation) -> None:
    before = os.readlink("/proc/thread-self/ns/net")
    listener = socket_in(pair.node("a").pid)
    with listener:
        listener.bind((pair.ip("a"), 0))  # an address that exists only inside host a
        listener.listen()
        port = listener.getsockname()[1]
        assert os.readlink("/proc/thread-self/ns/net") == before
        with socket_in(pair.node("b").pid) as client:
            client.settimeout(5)
            client.connect((pair.ip("a"), port))
            accepted, peer = listener.accept()
            accepted.close()
        assert peer[0] == pair.ip("b")
    with socket.socket() as outside, pytest.raises(OSError):  # the engine's own namespace
        outside.bind((pair.ip("a"), 0))


def _answer_once(listener: socket.socket) -> None:
    """A one-request HTTP server: the body reversed, then the caller's address."""
    connection, peer = listener.accept()
    with connection:
        request = b""
        while not request.endswith(b"olleh"):
            chunk = connection.recv(4096)
            if not chunk:
                return
            request += chunk
        body = request.split(b"\r\n\r\n", 1)[1][::-1] + peer[0].encode()
        connection.sendall(b"HTTP/1.1 201 Created\r\nConnection: close\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def test_http_from_a_host(pair: Emulation) -> None:
    with socket_in(pair.node("a").pid) as listener:
        listener.bind((pair.ip("a"), 0))
        listener.listen()
        port = listener.getsockname()[1]
        server = threading.Thread(target=_answer_once, args=(listener,), daemon=True)
        server.start()
        connection = HostHTTPConnection(pair.node("b").pid, pair.ip("a"), port, timeout=5)
        connection.request("PUT", "/x", body=b"olleh")
        response = connection.getresponse()
        assert (response.status, response.read()) == (201, b"hello" + pair.ip("b").encode())
        connection.close()
        server.join(5)
    with pytest.raises(OSError):  # nothing listens there any more
        HostHTTPConnection(pair.node("b").pid, pair.ip("a"), port, timeout=2).request("GET", "/")
