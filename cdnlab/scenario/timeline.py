"""The timeline: events applied to the running emulation at their scenario second, in
order, from one thread. Each applied event is logged (`event_applied`) with the time it
actually took effect, and the true RTT matrix is recorded after every change to links, so
the results can judge DNS answers against the truth of their moment. On a `routing: bgp`
topology a link cut or restored, and the BGP events, change what BGP chooses: each is
applied and waited on beside the timeline (one at a time, `cdnlab.net.bgp`), its
convergence logged (`bgp_converged`) and the true RTT matrix recorded once the routes
settled, while later events keep their seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cdnlab.scenario.spec import Event
from cdnlab.traces import load_trace
from nodes.common.events import EventLog
from nodes.router.config import POLICY_SETTINGS

DIRECTIONS = {"both": ("a_to_b", "b_to_a"), "a_to_b": ("a_to_b",), "b_to_a": ("b_to_a",)}


class Timeline(threading.Thread):
    def __init__(self, events: list[Event], emu: Any, start: float, log: EventLog,
                 handlers: dict[str, Callable[[Any], None]],
                 on_link_change: Callable[[], None]) -> None:
        super().__init__(name="timeline", daemon=True)
        self.events = events
        self.emu = emu
        self.start_at = start  # epoch of scenario second 0
        self.log = log
        self.handlers = handlers
        self.on_link_change = on_link_change
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.settling: list[threading.Thread] = []  # BGP changes waited on beside it

    def run(self) -> None:
        for event in self.events:
            wait = self.start_at + event.at - time.time()
            if wait > 0 and self.stopping.wait(wait):
                return
            try:
                # lateness is when the event began, against its second; what applying it
                # took (a cluster_up starts edges and waits for their health) is apply_s
                began = time.time()
                self.apply(event)
                self.log.emit("event_applied", at=event.at, kind=event.kind,
                              args=event.args,
                              late_s=round(began - self.start_at - event.at, 3),
                              apply_s=round(time.time() - began, 3))
            except Exception as err:  # an event that fails is reported, the run goes on
                self._failed(event, err)
        for thread in self.settling:  # the run ends once the last change has settled
            thread.join()

    def _failed(self, event: Event, err: Exception) -> None:
        self.errors.append(f"{event.kind} at {event.at:g} s: {err}")
        self.log.emit("event_failed", at=event.at, kind=event.kind, error=str(err))

    def _bgp(self, event: Event, change: Callable[[Any], Any]) -> None:
        """Apply a BGP change beside the timeline and log how it converged."""

        def settle() -> None:
            try:
                done = change(self.emu.bgp)
                self.log.emit("bgp_converged", by="timeline", at=event.at, kind=event.kind,
                              **done.to_dict())
                self.on_link_change()
            except Exception as err:  # reported as any failed event is
                self._failed(event, err)

        thread = threading.Thread(target=settle, name=f"bgp {event.kind}", daemon=True)
        thread.start()
        self.settling.append(thread)

    def apply(self, event: Event) -> None:
        args = event.args
        if event.kind == "set_link":
            link = self.emu.link(args["a"], args["b"])
            changes = {k: float(v) for k, v in args.items()
                       if k in ("rate", "delay", "jitter", "loss")}
            for direction in DIRECTIONS[args.get("direction", "both")]:
                self.emu.changes.set_shape(args["a"], args["b"], direction,
                                   link.shapes[direction].with_changes(**changes))
            self.on_link_change()
        elif event.kind in ("link_down", "link_up"):
            up = event.kind == "link_up"
            if self.emu.bgp is not None:
                self._bgp(event, lambda bgp: bgp.set_link(args[0], args[1], up))
            else:
                self.emu.changes.set_link_up(args[0], args[1], up)
                self.on_link_change()
        elif event.kind in ("bgp_withdraw", "bgp_announce"):
            self._bgp(event, lambda bgp: (bgp.withdraw if event.kind == "bgp_withdraw"
                                          else bgp.announce)(args))
        elif event.kind == "bgp_policy":
            policy = {k: args[k] for k in POLICY_SETTINGS if k in args}
            self._bgp(event, lambda bgp: bgp.set_policy(args["router"], args.get("neighbour"),
                                                        policy))
        elif event.kind == "replay":
            self.emu.changes.replay(args["a"], args["b"], load_trace(Path(args["trace"])),
                            args.get("direction", "both"), bool(args.get("loop", True)))
        else:
            self.handlers[event.kind](args)
