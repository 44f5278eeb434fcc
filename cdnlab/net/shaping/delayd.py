"""The userspace delay/jitter/loss process of the `nfqueue` shaping backend.

One runs inside each link namespace (see `nfqueue.py`), serving both directions of its link:
iptables sends each direction's packets to its own NFQUEUE number, and this process holds
only their ids, gives a drop verdict at once for a lost packet, and accepts the rest when
their delay is over (one batch verdict per queue per release). Release times never go
backwards within a queue, so jitter does not reorder packets.

    python -m cdnlab.net.shaping.delayd --config link.json --log link.jsonl

The config is JSON: {"seed": 1, "queues": {"0": {"delay_ms": 20, "jitter_ms": 0,
"loss_pct": 0}, "1": {...}}}. SIGHUP re-reads it (new values apply to packets that arrive
afterwards); SIGTERM releases every held packet and exits. Prints `ready` on stdout once
every queue is bound, so rules are added only when a process is there to serve them.
It runs with 1 ns timer slack and at SCHED_FIFO where allowed (`cdnlab.net.sched`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import select
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cdnlab.net import sched
from cdnlab.net.shaping import nfnetlink as nfq

SO_RCVBUFFORCE = 33
SO_TIMESTAMP = 29
RECEIVE_BUFFER = 64 * 1024 * 1024
QUEUE_MAXLEN = 65536
LATENESS_GAIN = 0.05  # weight of each new sample in the wake-lateness average
MAX_ADVANCE_S = 0.002
STATS_INTERVAL_S = 1.0  # how often the queues' own figures are logged (`queue_stats`)
KERNEL_QUEUES = Path("/proc/net/netfilter/nfnetlink_queue")


def kernel_drops() -> dict[int, int]:
    """Per queue number, packets the kernel dropped because the queue was full or this
    process could not take them (queue_dropped + user_dropped, since the queue was bound;
    /proc/net is this network namespace's)."""
    drops: dict[int, int] = {}
    try:
        for line in KERNEL_QUEUES.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 7:
                drops[int(fields[0])] = int(fields[5]) + int(fields[6])
    except (OSError, ValueError):
        return {}
    return drops


def parse_impairment(values: dict[str, Any]) -> tuple[float, float, float]:
    """(delay s, jitter s, loss fraction) from a queue's config; ValueError if out of range."""
    delay = float(values.get("delay_ms", 0.0)) / 1000.0
    jitter = float(values.get("jitter_ms", 0.0)) / 1000.0
    loss = float(values.get("loss_pct", 0.0)) / 100.0
    if delay < 0 or jitter < 0 or not 0 <= loss < 1:
        raise ValueError(f"impairment out of range: {values}")
    return delay, jitter, loss


@dataclass
class QueueState:
    """Held packets of one direction, with that direction's current impairment."""

    number: int
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    held: deque[tuple[float, int]] = field(default_factory=deque)
    last_release: float = 0.0
    packets: int = 0
    dropped: int = 0
    stamped: int = 0
    receive_lag_s: float = 0.0  # summed: kernel arrival → this process reading the packet
    release_lag_s: float = 0.0  # summed: planned release → verdict sent
    released: int = 0
    lag_max_s: float = 0.0  # the largest release lag since the last `interval_stats`
    _reported: tuple[int, int, int, float] = (0, 0, 0, 0.0)

    def configure(self, values: tuple[float, float, float]) -> None:
        """Set (delay s, jitter s, loss fraction), as `parse_impairment` returns them."""
        self.delay_s, self.jitter_s, self.loss = values


    def admit(self, now: float, arrived: float, packet_id: int) -> bool:
        """Hold a packet for its delay, counted from when it `arrived` in the kernel;
        False if it is to be dropped."""
        self.packets += 1
        if self.loss and self.rng.random() < self.loss:
            self.dropped += 1
            return False
        release = arrived + self.delay_s
        if self.jitter_s:
            release += self.rng.uniform(-self.jitter_s, self.jitter_s)
        release = max(release, self.last_release, now)
        self.last_release = release
        self.held.append((release, packet_id))
        return True

    def due(self, now: float, horizon: float) -> int | None:
        """Pop every packet due by `horizon`; the highest such id, or None."""
        last = None
        held = self.held
        while held and held[0][0] <= horizon:
            release, last = held.popleft()
            lag = now - release
            self.release_lag_s += lag
            if lag > self.lag_max_s:
                self.lag_max_s = lag
            self.released += 1
        return last

    def interval_stats(self) -> dict[str, Any]:
        """Since the last call: packets, lost (by the loss model), released, and how late
        they were released (mean and max, µs; early releases count as 0)."""
        packets, dropped, released, lag = self._reported
        count = self.released - released
        stats = {"packets": self.packets - packets, "lost": self.dropped - dropped,
                 "released": count, "held": len(self.held),
                 "lag_mean_us": round(1e6 * max(self.release_lag_s - lag, 0.0) / count, 1)
                 if count else None,
                 "lag_max_us": round(1e6 * max(self.lag_max_s, 0.0), 1) if count else None}
        self._reported = (self.packets, self.dropped, self.released, self.release_lag_s)
        self.lag_max_s = 0.0
        return stats

    def stats(self) -> dict[str, Any]:
        return {"packets": self.packets, "dropped": self.dropped, "stamped": self.stamped,
                "receive_lag_us": round(1e6 * self.receive_lag_s / max(self.stamped, 1), 1),
                "release_lag_us": round(1e6 * self.release_lag_s / max(self.released, 1), 1)}


class DelayProcess:
    """Owns the netlink socket and the queues; runs until SIGTERM."""

    def __init__(self, config_path: Path, log: IO[str], node: str, t0: float) -> None:
        self.config_path = config_path
        self.log = log
        self.node = node
        self.t0 = t0
        self.queues: dict[int, QueueState] = {}
        self.reload_requested = False
        self.stop_requested = False
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nfq.NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        self.sock.setsockopt(nfq.SOL_NETLINK, nfq.NETLINK_NO_ENOBUFS, 1)
        self.sock.bind((0, 0))
        # Any socket asking for receive timestamps makes the kernel stamp every packet on
        # arrival, and nfnetlink_queue then reports that time: delays count from it, not
        # from when this process woke up to read the packet.
        self.stamper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stamper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        self.advance = 0.0  # how much earlier than a release to wake: learnt lateness
        self.load_config()

    def event(self, name: str, **fields: Any) -> None:
        record = {"t": round(time.time() - self.t0, 6), "node": self.node, "event": name}
        record.update(fields)
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()

    def load_config(self) -> None:
        """Read the config; every queue's values are checked before any is applied."""
        config = json.loads(self.config_path.read_text())
        seed = config.get("seed", 0)
        parsed = {int(key): parse_impairment(values) for key, values in config["queues"].items()}
        for number, values in parsed.items():
            if number not in self.queues:
                self.queues[number] = QueueState(number, rng=random.Random(f"{seed}:{number}"))
            self.queues[number].configure(values)
        self.event("config", queues=config["queues"])

    def request(self, message: bytes) -> None:
        """Send a config request and wait for its ack (raises NetlinkError on refusal)."""
        self.sock.send(message)
        self.sock.settimeout(2.0)
        try:
            for _ in nfq.parse(self.sock.recv(65536)):
                pass
        finally:
            self.sock.settimeout(None)

    def bind(self) -> None:
        for number in self.queues:
            self.request(nfq.bind_queue(number))
            self.request(nfq.configure_queue(number, QUEUE_MAXLEN))
        self.sock.setblocking(False)

    def run(self) -> None:
        buffer = bytearray(256 * 1024)
        view = memoryview(buffer)
        queues = self.queues
        sock = self.sock
        wake_reader, wake_writer = socket.socketpair()
        wake_reader.setblocking(False)
        wake_writer.setblocking(False)
        signal.set_wakeup_fd(wake_writer.fileno(), warn_on_full_buffer=False)
        next_stats = time.monotonic() + STATS_INTERVAL_S
        while not self.stop_requested:
            if time.monotonic() >= next_stats:
                next_stats += STATS_INTERVAL_S
                drops = kernel_drops()
                self.event("queue_stats", queues={
                    q.number: q.interval_stats() | {"kernel_drops": drops.get(q.number)}
                    for q in queues.values()})
            if self.reload_requested:
                self.reload_requested = False
                try:
                    self.load_config()
                except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                    # keep serving with the shapes in force: a link that stops delaying or
                    # drops everything would be worse than one that keeps its old shape
                    self.event("config_error", error=str(exc), path=str(self.config_path))
            next_release = min((q.held[0][0] for q in queues.values() if q.held), default=None)
            now = time.monotonic()
            wake_at = None if next_release is None else next_release - self.advance
            timeout = min(0.5 if wake_at is None else max(0.0, wake_at - now),
                          max(0.0, next_stats - now))
            ready, _, _ = select.select([sock, wake_reader], [], [], timeout)
            if wake_reader in ready:
                with contextlib.suppress(BlockingIOError):
                    wake_reader.recv(64)
                continue  # a signal: reload or stop first
            readable = sock in ready
            if readable:
                while True:
                    try:
                        size = sock.recv_into(buffer)
                    except BlockingIOError:
                        break
                    now = time.monotonic()
                    clock_offset = time.time() - now
                    for packet in nfq.parse(view[:size]):
                        queue = queues.get(packet.queue)
                        if queue is None:
                            continue
                        arrived = now
                        if packet.arrived is not None:
                            arrived = min(now, packet.arrived - clock_offset)
                            queue.stamped += 1
                            queue.receive_lag_s += now - arrived
                        if not queue.admit(now, arrived, packet.packet_id):
                            sock.send(nfq.verdict(packet.queue, packet.packet_id, False))
            now = time.monotonic()
            if wake_at is not None and not readable and now >= wake_at:
                lateness = min(now - wake_at, MAX_ADVANCE_S)
                self.advance += LATENESS_GAIN * (lateness - self.advance)
            horizon = now + self.advance
            for queue in queues.values():
                last = queue.due(now, horizon)
                if last is not None:
                    sock.send(nfq.batch_accept(queue.number, last))

    def shutdown(self) -> None:
        """Release everything still held, unbind, and report the counts."""
        self.sock.setblocking(True)
        for queue in self.queues.values():
            if queue.held:
                self.sock.send(nfq.batch_accept(queue.number, queue.held[-1][1]))
                queue.held.clear()
            with contextlib.suppress(OSError):
                self.request(nfq.unbind_queue(queue.number))
        counts = {q.number: q.stats() for q in self.queues.values()}
        self.event("stop", queues=counts, wake_advance_us=round(self.advance * 1e6, 1))
        self.sock.close()
        self.stamper.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="delayd", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--node", default="link")
    parser.add_argument("--t0", type=float, default=None, help="run start, epoch seconds")
    args = parser.parse_args(argv)
    t0 = args.t0 if args.t0 is not None else time.time()
    with args.log.open("a") as log:
        try:
            process = DelayProcess(args.config, log, args.node, t0)
            process.bind()
        except (OSError, ValueError, KeyError) as exc:
            print(f"delayd: cannot start: {exc}", file=sys.stderr)
            return 2

        def on_term(_signum: int, _frame: object) -> None:
            process.stop_requested = True

        def on_hup(_signum: int, _frame: object) -> None:
            process.reload_requested = True

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        signal.signal(signal.SIGHUP, on_hup)
        # releases are timed to the microsecond and must not wait behind the hosts' work
        sched.precise_timers()
        policy = sched.realtime()
        process.event("ready", queues=sorted(process.queues), scheduling=policy)
        print("ready", flush=True)
        try:
            process.run()
        finally:
            process.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
