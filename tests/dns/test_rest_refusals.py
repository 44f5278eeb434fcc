"""The REST API refuses every bad input class with the right status and a reason, and a
refusal changes nothing: named cases first, then hypothesis over methods, paths, headers
and bodies against the real redirector process."""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dns.conftest import RunningRedirector, start_redirector


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRedirector]:
    running = start_redirector(Path(tmp_path_factory.mktemp("rest")))
    yield running
    running.process.terminate()
    assert running.process.wait(10) == 0


def send(api: RunningRedirector, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", api.rest_port, timeout=5)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        sent = {"Authorization": f"Bearer {api.token}"} | (headers or {})
        if body is not None and "Content-Length" not in sent:
            sent["Content-Length"] = str(len(body))
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders()
        if body:  # a server that refuses a body by its headers may close before reading it
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.send(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def state(api: RunningRedirector) -> Any:
    status, document = send(api, "GET", "/state")
    assert status == 200
    return document["serial"], document["records"]


CASES = [
    ("PUT", "/clusters/edge_a/rtt", b"{}", {"Content-Length": "-5"}, 400, "not a length"),
    ("PUT", "/clusters/edge_a/rtt", b"{}", {"Content-Length": "ten"}, 400, "not a length"),
    ("PUT", "/clusters/edge_a/load", None, {}, 411, "Content-Length"),
    ("POST", "/batch", b"x" * ((1 << 20) + 1), {}, 413, "over"),
    ("POST", "/batch", b'{"ops": [1]}', {}, 400, "JSON object"),
    ("POST", "/batch", b'{"ops": ["add"]}', {}, 400, "JSON object"),
    ("PUT", "/clusters/nowhere/rtt", b'{"network": "10.0.1.0/24", "rtt_ms": 5}', {}, 404,
     "no such cluster"),
    ("PUT", "/clusters/edge_a/rtt", b'{"network": "10.0.1.0/24", "rtt_ms": Infinity}', {},
     400, "finite"),
    ("PUT", "/clusters/edge_a/load", b'{"load": NaN}', {}, 400, "finite"),
    ("PUT", "/clusters/edge_a/load", b'{"load": -1}', {}, 400, "finite"),
    ("PUT", "/clusters/edge_a/rtt", b'{"network": "nowhere", "rtt_ms": 5}', {}, 400, "CIDR"),
    ("PUT", "/clusters/edge_a/health", b'{"up": "yes"}', {}, 400, "true or false"),
    ("POST", "/records", b'{"name": "www", "type": "A", "ttl": -3, "rdata": ["1.2.3.4"]}',
     {}, 400, "ttl"),
    ("PATCH", "/records", b"{}", {}, 405, "not a method"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "reason"), CASES)
def test_each_bad_input_class_is_refused_and_changes_nothing(
        api: RunningRedirector, method: str, path: str, body: bytes | None,
        headers: dict[str, str], status: int, reason: str) -> None:
    before = state(api)
    got, answer = send(api, method, path, body, headers)
    assert (got, reason in answer.get("error", "")) == (status, True), answer
    assert state(api) == before


def test_a_good_write_still_works(api: RunningRedirector) -> None:
    status, answer = send(api, "PUT", "/clusters/edge_a/load", b'{"load": 0.5}')
    assert status == 200 and answer["changed"] in (True, False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() |
    st.text(max_size=20), lambda inner: st.lists(inner, max_size=4) |
    st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
fields = st.fixed_dictionaries({}, optional={
    "name": json_values | st.sampled_from(["www", "edge_a.load", "x.rtt", "a.b.c.d"]),
    "type": json_values | st.sampled_from(["A", "TXT", "AAAA", "SOA", "ANY"]),
    "ttl": json_values, "rdata": json_values | st.just(["10.1.1.1"]),
    "action": json_values | st.sampled_from(["add", "replace", "delete_rr"]),
    "network": json_values | st.just("10.0.1.0/24"), "rtt_ms": json_values,
    "load": json_values, "up": json_values,
    "ops": st.lists(json_values, max_size=3)})
paths = st.sampled_from(["/state", "/records", "/batch", "/clusters/edge_a/rtt",
                         "/clusters/edge_a/load", "/clusters/edge_a/health",
                         "/clusters/zz/load", "/clusters/edge_a/zz", "/", "/records/x"])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), path=paths,
       body=fields.map(lambda d: json.dumps(d).encode()) | st.binary(max_size=64))
def test_no_input_makes_a_server_error_and_a_refusal_changes_nothing(
        api: RunningRedirector, method: str, path: str, body: bytes) -> None:
    before = state(api)
    status, _answer = send(api, method, path, body)
    assert status < 500
    if status != 200:
        assert state(api) == before
