"""The redirector against clients nobody here wrote: dig (with +subnet), nsupdate (TSIG),
raw garbage, and the REST API, on loopback."""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from dnslib import EDNS0, DNSRecord

from nodes.dns.config import load_config
from nodes.dns.redirector import Redirector
from tests.dns.conftest import RunningRedirector, start_redirector

RTT_UPDATE = ['update add 10-0-4-0-24.edge_a.rtt.cdn.lab. 0 TXT "6.0"',
              'update add 10-0-4-0-24.edge_x.rtt.cdn.lab. 0 TXT "13.0"',
              'update add 10-0-5-0-24.edge_a.rtt.cdn.lab. 0 TXT "26.0"',
              'update add 10-0-5-0-24.edge_x.rtt.cdn.lab. 0 TXT "17.0"']


def test_authoritative_answers_by_dig(redirector: RunningRedirector) -> None:
    soa = redirector.dig("cdn.lab.", "SOA", "+norec")
    assert "status: NOERROR" in soa and "flags: qr aa" in soa
    assert redirector.short("cdn.lab.", "NS") == ["ns1.cdn.lab."]
    nx = redirector.dig("nothing.cdn.lab.", "A")
    assert "status: NXDOMAIN" in nx and "SOA" in nx.split("AUTHORITY SECTION")[1]
    nodata = redirector.dig("video.cdn.lab.", "AAAA")
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata
    assert "status: REFUSED" in redirector.dig("www.example.com.", "A")
    answer = redirector.dig("video.cdn.lab.", "A")
    assert "video.cdn.lab.\t\t7\tIN\tA" in answer, "the service TTL"


def test_lowest_rtt_with_client_subnet_and_its_scope(redirector: RunningRedirector) -> None:
    done = redirector.nsupdate(RTT_UPDATE)
    assert done.returncode == 0, done.stderr
    assert redirector.short("video.cdn.lab.", "+subnet=10.0.4.77/32") == ["10.9.0.2",
                                                                         "10.9.0.3"]
    b = redirector.dig("video.cdn.lab.", "+subnet=10.0.5.0/24")
    assert "CLIENT-SUBNET: 10.0.5.0/24/24" in b
    assert [line.split()[-1] for line in b.splitlines() if line.startswith("video.")] == \
        ["10.9.1.2"]
    wider = redirector.dig("video.cdn.lab.", "+subnet=10.0.0.0/16")
    assert "CLIENT-SUBNET: 10.0.0.0/16/0" in wider, "no measured network: scope /0"
    time.sleep(0.7)  # the decision log is flushed every half second
    decisions = [json.loads(line) for line in
                 (redirector.directory / "decisions.jsonl").read_text().splitlines()]
    by_subnet = {d["subnet"]: d for d in decisions}
    assert by_subnet["10.0.5.0/24"]["cluster"] == "edge_x"
    assert by_subnet["10.0.5.0/24"]["reason"] == "lowest_rtt"
    assert {c["cluster"]: c["rtt_ms"] for c in by_subnet["10.0.5.0/24"]["candidates"]} == \
        {"edge_x": 17.0, "edge_a": 26.0}


def test_nsupdate_adds_replaces_and_deletes(redirector: RunningRedirector) -> None:
    serial = redirector.serial()
    assert redirector.nsupdate(["update add www.cdn.lab. 30 A 10.1.1.1"]).returncode == 0
    assert redirector.short("www.cdn.lab.") == ["10.1.1.1"]
    assert redirector.serial() == serial + 1
    assert redirector.nsupdate(["update add www.cdn.lab. 30 A 10.1.1.2"]).returncode == 0
    assert sorted(redirector.short("www.cdn.lab.")) == ["10.1.1.1", "10.1.1.2"]
    replace = ["update delete www.cdn.lab. A", "update add www.cdn.lab. 30 A 10.1.1.9"]
    assert redirector.nsupdate(replace).returncode == 0
    assert redirector.short("www.cdn.lab.") == ["10.1.1.9"]
    assert redirector.serial() == serial + 3, "one serial per accepted update"
    assert redirector.nsupdate(["update add www.cdn.lab. 30 TXT hello"]).returncode == 0
    assert redirector.nsupdate(["update delete www.cdn.lab. A 10.1.1.9"]).returncode == 0
    assert redirector.short("www.cdn.lab.", "A") == []
    assert redirector.short("www.cdn.lab.", "TXT") == ['"hello"']
    assert redirector.nsupdate(["update delete www.cdn.lab."]).returncode == 0
    assert "NXDOMAIN" in redirector.dig("www.cdn.lab.")
    # a cluster given IPv6 addresses is answered for AAAA too
    assert redirector.short("video.cdn.lab.", "AAAA") == []
    # (cluster names with '_' are not host names: nsupdate checks A/AAAA owners unless told)
    assert redirector.nsupdate(["check-names no",
                                "update add edge_a.cluster.cdn.lab. 60 AAAA fd00::2"]
                               ).returncode == 0
    assert redirector.short("video.cdn.lab.", "AAAA") == ["fd00::2"]
    # prerequisites: "name is not in use" fails now that it is
    redirector.nsupdate(["update add www.cdn.lab. 30 A 10.1.1.1"])
    failed = redirector.nsupdate(["prereq nxdomain www.cdn.lab.",
                                  "update add www.cdn.lab. 30 A 10.7.7.7"])
    assert failed.returncode != 0 and "YXDOMAIN" in failed.stdout + failed.stderr
    assert redirector.short("www.cdn.lab.") == ["10.1.1.1"]


def test_unsigned_wrongly_signed_and_out_of_zone_updates_change_nothing(
        redirector: RunningRedirector) -> None:
    serial = redirector.serial()
    unsigned = redirector.nsupdate(["update add evil.cdn.lab. 30 A 6.6.6.6"], signed=False)
    assert unsigned.returncode != 0 and "REFUSED" in unsigned.stdout + unsigned.stderr
    wrong = redirector.nsupdate(["update add evil.cdn.lab. 30 A 6.6.6.6"],
                                secret="d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE=")
    assert wrong.returncode != 0 and "NOTAUTH" in wrong.stdout + wrong.stderr
    outside = redirector.nsupdate(["update add evil.example.com. 30 A 6.6.6.6"])
    assert outside.returncode != 0 and "NOTZONE" in outside.stdout + outside.stderr
    reserved = redirector.nsupdate(['update add edge_a.load.cdn.lab. 0 TXT "heavy"'])
    assert reserved.returncode != 0 and "REFUSED" in reserved.stdout + reserved.stderr
    assert redirector.short("evil.cdn.lab.") == [] and redirector.serial() == serial
    rcodes = [e["rcode"] for e in redirector.events() if e["event"] == "update"]
    assert rcodes == ["REFUSED", "NOTAUTH", "NOTZONE", "REFUSED"]


def test_ten_thousand_random_and_truncated_packets_do_not_stop_it(
        redirector: RunningRedirector) -> None:
    rng = random.Random(11)
    good = DNSRecord.question("video.cdn.lab.", "A").pack()
    signed_like = DNSRecord.question("cdn.lab.", "SOA").pack()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.02)
    address = ("127.0.0.1", redirector.port)
    answers = formerr = 0
    for n in range(10_000):
        kind = n % 4
        if kind == 0:
            packet = os.urandom(rng.randrange(0, 600))
        elif kind == 1:
            packet = good[: rng.randrange(0, len(good))]
        elif kind == 2:
            packet = bytearray(signed_like)
            for _ in range(3):
                packet[rng.randrange(len(packet))] = rng.randrange(256)
            packet = bytes(packet)
        else:  # an UPDATE header with garbage behind it
            packet = struct.pack(">HHHHHH", n, 5 << 11, 1, 0, 0, 1) + os.urandom(40)
        sock.sendto(packet, address)
        if n % 50 == 49:  # drain the replies to this batch
            try:
                while True:
                    reply = sock.recv(4096)
                    answers += 1
                    formerr += len(reply) >= 4 and (reply[3] & 0x0F) == 1
            except (TimeoutError, BlockingIOError):
                pass
    sock.close()
    assert redirector.process.poll() is None, "the server is still running"
    assert formerr > 100, "garbage with an ID gets FORMERR"
    assert redirector.short("video.cdn.lab.") == ["10.9.0.2", "10.9.0.3"]
    assert not [e for e in redirector.events() if e["event"] == "error"]


def test_tcp_queries_and_the_fast_path_equal_the_full_resolver(
        redirector: RunningRedirector) -> None:
    assert redirector.short("video.cdn.lab.", "+tcp") == ["10.9.0.2", "10.9.0.3"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    local = Redirector(load_config(redirector.directory / "dns.yaml"))  # same zone, no socket
    for edns in (False, True):
        query = DNSRecord.question("ViDeo.CDN.lab.", "A")  # mixed case is kept (0x20)
        if edns:
            query.add_ar(EDNS0(udp_len=1232))
        query.header.id = 4242
        wire = bytes(query.pack())
        assert local.fast.answer(wire, "127.0.0.1") is not None, "the fast path takes it"
        sock.sendto(wire, ("127.0.0.1", redirector.port))
        fast = sock.recv(4096)
        slow = bytes(local.resolver.resolve(DNSRecord.parse(wire), "127.0.0.1").reply.pack())
        assert fast == slow, (fast.hex(), slow.hex())
    sock.close()


def test_rest_api_reads_state_and_changes_it_atomically(
        redirector: RunningRedirector) -> None:
    status, _ = redirector.rest("GET", "/state", token="wrong")
    assert status == 401
    status, body = redirector.rest("PUT", "/clusters/edge_a/rtt",
                                   {"network": "10.0.4.0/24", "rtt_ms": 30})
    assert status == 200 and body["changed"]
    redirector.rest("PUT", "/clusters/edge_x/rtt", {"network": "10.0.4.0/24", "rtt_ms": 9.5})
    assert redirector.short("video.cdn.lab.", "+subnet=10.0.4.1/32") == ["10.9.1.2"]
    assert redirector.rest("PUT", "/clusters/edge_x/health", {"up": False})[0] == 200
    assert redirector.short("video.cdn.lab.", "+subnet=10.0.4.1/32") == ["10.9.0.2",
                                                                        "10.9.0.3"]
    serial = redirector.serial()
    status, body = redirector.rest("POST", "/batch", {"ops": [
        {"action": "add", "name": "a.static", "type": "A", "ttl": 5, "rdata": ["10.2.0.1"]},
        {"action": "replace", "name": "edge_a.load", "type": "TXT", "rdata": ["oops"]}]})
    assert status == 400 and body["rcode"] == "REFUSED"
    assert redirector.serial() == serial and redirector.short("a.static.cdn.lab.") == []
    status, body = redirector.rest("POST", "/records", {"name": "a.static", "type": "A",
                                                        "ttl": 5, "rdata": ["10.2.0.1"]})
    assert status == 200 and body["serial"] == serial + 1
    status, state = redirector.rest("GET", "/state")
    assert state["rtt_ms"]["10.0.4.0/24"] == {"edge_a": 30.0, "edge_x": 9.5}
    assert state["clusters"]["edge_x"]["up"] is False
    assert state["serial"] == redirector.serial()
    assert redirector.rest("DELETE", "/records", {"name": "a.static"})[0] == 200
    assert "NXDOMAIN" in redirector.dig("a.static.cdn.lab.")
    assert redirector.rest("GET", "/nothing")[0] == 404


def test_a_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "dns.yaml"
    config.write_text("zone: cdn.lab.\nservices: {video: {policy: nearest}}\n")
    done = subprocess.run([sys.executable, "-m", "nodes.dns", "--config", str(config)],
                          capture_output=True, text=True, check=False, timeout=20)
    assert done.returncode == 2
    assert "services.video.policy 'nearest' is unknown" in done.stderr


def test_spill_policy_decisions_repeat_for_a_seed(tmp_path: Path) -> None:
    runs = []
    for attempt in range(2):
        directory = tmp_path / str(attempt)
        directory.mkdir()
        running = start_redirector(directory, {"services": {"video": {
            "policy": "min_rtt_spill", "ttl": 5}}})
        try:
            running.nsupdate([*RTT_UPDATE, 'update add edge_a.load.cdn.lab. 0 TXT "1.6"'])
            runs.append([running.short("video.cdn.lab.", "+subnet=10.0.4.1/32")[0]
                         for _ in range(40)])
        finally:
            running.process.terminate()
            running.process.wait(10)
    assert runs[0] == runs[1]
    assert 0 < runs[0].count("10.9.1.2") < 40, "about half spill to edge_x"


def test_bench_dns_prints_every_server_and_the_summary_line() -> None:
    done = subprocess.run([sys.executable, "-m", "cdnlab.cli", "bench", "dns", "--seconds",
                           "1", "--rounds", "1"], capture_output=True, text=True, check=False,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for server in ("redirector", "dnslib-stock", "knot"):
        assert any(line.startswith(server) for line in lines), done.stdout
    summary = dict(item.split("=") for item in lines[-1].removeprefix("dns: ").split())
    assert set(summary) == {"qps", "p99_ms", "baseline_qps", "knot_qps"}
    assert all(float(value) > 0 for value in summary.values())
