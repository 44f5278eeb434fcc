"""RTT probes on a real network: both methods measure the path's RTT, and their receive
sockets read only their own replies even while the probed host carries a bulk transfer
(`nodes/probe/measure.py`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from cdnlab.net.emulation import Emulation
from cdnlab.topology.spec import parse_topology

pytestmark = pytest.mark.root

PAIR = {"name": "pair", "nodes": {"edge": "server", "viewer": "client"},
        "links": [{"a": "edge", "b": "viewer", "delay": 10, "rate": 100}]}

ROUND = """
import json, sys
from nodes.probe.measure import Target, probe_round
print(json.dumps(probe_round([Target("net", sys.argv[1])], sys.argv[2], count=3)))
"""

STALLED_ROUND = """
import json, os, signal, sys, threading, time
from nodes.probe.measure import Target, probe_round
stall_s = float(sys.argv[3])

def stall():
    time.sleep(0.005)
    os.kill(int(sys.argv[2]), signal.SIGSTOP)
    time.sleep(stall_s)
    os.kill(int(sys.argv[2]), signal.SIGCONT)

threading.Thread(target=stall).start()
print(json.dumps(probe_round([Target("net", sys.argv[1])], "icmp", count=3)))
"""

COUNT_UNFILTERED = """
import socket, sys, time
from nodes.probe import measure
sock = measure._receiver(socket.IPPROTO_TCP, measure.tcp_filter(int(sys.argv[1]), 256)
                         if sys.argv[1] != "none" else [(measure.RET_K, 0, 0, 0xFFFF)])
sock.setblocking(True); sock.settimeout(0.05)
seen, end = 0, time.monotonic() + 1.0
while time.monotonic() < end:
    try:
        sock.recv(65536); seen += 1
    except TimeoutError:
        pass
print(seen)
"""


@pytest.fixture(scope="module")
def pair() -> Iterator[Emulation]:
    with Emulation(parse_topology(PAIR, "pair")) as emu:
        yield emu


def run_in(emu: Emulation, node: str, code: str, *args: str) -> str:
    process = emu.node(node).popen([sys.executable, "-c", code, *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return str(out).strip()


@pytest.mark.parametrize("method", ["icmp", "tcp"])
def test_a_round_measures_the_path_rtt(pair: Emulation, method: str) -> None:
    viewer = pair.ip("viewer")
    best = json.loads(run_in(pair, "edge", ROUND, viewer, method).splitlines()[-1])
    assert best["net"] is not None and 20.0 <= best["net"] <= 21.5, best


def test_a_stall_shorter_than_the_spacing_delays_one_probe_not_the_round(
        pair: Emulation) -> None:
    """The delay path stopped for 100 ms just after a round began (as a CPU-capped host
    stops a vCPU): the first wave's probes wait it out, the next waves' do not, so the
    round's smallest RTT is still the path's. (Sent all at once, every probe waited.)"""
    process = pair.link("edge", "viewer").process
    if pair.shaping != "nfqueue" or process is None:
        pytest.skip("the stall is made by stopping the nfqueue delay process")
    out = run_in(pair, "edge", STALLED_ROUND, pair.ip("viewer"), str(process.pid), "0.1")
    best = json.loads(out.splitlines()[-1])
    # a wake-up late by the stall moves the delay server's release ahead of time up a
    # little (delayd.c LATENESS_GAIN of the lateness capped at MAX_ADVANCE_NS: 0.1 ms)
    assert best["net"] is not None and 19.8 <= best["net"] <= 21.5, best


def test_the_receive_socket_reads_no_video(pair: Emulation) -> None:
    """While the edge sends a bulk TCP transfer, the probe's filtered socket reads nothing
    of it; the same socket without the filter reads hundreds of its packets a second."""
    viewer = pair.node("viewer")
    server = viewer.popen(["iperf3", "-s", "-1", "-p", "5201"], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    client = pair.node("edge").popen(["iperf3", "-c", pair.ip("viewer"), "-p", "5201", "-t", "4"],
                                     stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        filtered = int(run_in(pair, "edge", COUNT_UNFILTERED, "40000").splitlines()[-1])
        unfiltered = int(run_in(pair, "edge", COUNT_UNFILTERED, "none").splitlines()[-1])
    finally:
        client.wait(timeout=15)
        server.wait(timeout=15)
    assert unfiltered > 100, unfiltered  # the transfer (its ACKs here) was there to be read
    assert filtered == 0
