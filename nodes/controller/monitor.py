"""Port counters of every connected switch, polled every interval and written as JSON
lines, one per port and poll:

    {"t", "node": "controller", "event": "port_stats", "switch", "dpid", "port", "name",
     "link", "class", "peer", "rx_bytes", "tx_bytes", "rx_packets", "tx_packets"}

Port numbers are mapped to names by asking each switch for its port descriptions, and
names to the topology's links by the engine's configuration. `switch_up`/`switch_down`
events mark connections coming and going.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar, TextIO

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from nodes.controller.config import load


class Monitor(app_manager.OSKenApp):  # type: ignore[misc]
    OFP_VERSIONS: ClassVar[list[int]] = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = load()
        self.ports_by_name: dict[str, dict[str, Any]] = config.get("ports", {})
        self.interval_s = float(config.get("interval_s", 1.0))
        self.epoch = float(config.get("epoch") or time.time())
        self.out: TextIO | None = open(config["events"], "a") if config.get("events") \
            else None  # noqa: SIM115 (kept open for the app's life)
        self.datapaths: dict[int, Any] = {}
        self.names: dict[tuple[int, int], str] = {}
        self.poller = hub.spawn(self._poll)

    def emit(self, event: str, **fields: Any) -> None:
        if self.out is None:
            return
        record = {"t": round(time.time() - self.epoch, 6), "node": "controller",
                  "event": event, **fields}
        self.out.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.out.flush()

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def on_state(self, event: Any) -> None:
        datapath = event.datapath
        if event.state == MAIN_DISPATCHER and datapath.id not in self.datapaths:
            self.datapaths[datapath.id] = datapath
            parser = datapath.ofproto_parser
            datapath.send_msg(parser.OFPPortDescStatsRequest(datapath, 0))
            self.emit("switch_up", dpid=datapath.id)
        elif event.state == DEAD_DISPATCHER and datapath.id in self.datapaths:
            del self.datapaths[datapath.id]
            self.emit("switch_down", dpid=datapath.id)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def on_port_desc(self, event: Any) -> None:
        dpid = event.msg.datapath.id
        for port in event.msg.body:
            name = port.name.decode() if isinstance(port.name, bytes) else port.name
            self.names[(dpid, port.port_no)] = name

    def _poll(self) -> None:
        while True:
            for datapath in list(self.datapaths.values()):
                parser = datapath.ofproto_parser
                datapath.send_msg(parser.OFPPortStatsRequest(datapath, 0,
                                                             datapath.ofproto.OFPP_ANY))
            hub.sleep(self.interval_s)

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def on_port_stats(self, event: Any) -> None:
        dpid = event.msg.datapath.id
        for stat in event.msg.body:
            name = self.names.get((dpid, stat.port_no))
            if name is None or stat.port_no > 0xFFFFFF00:  # the local port, or unknown
                continue
            where = self.ports_by_name.get(name, {})
            self.emit("port_stats", switch=where.get("switch"), dpid=dpid, port=stat.port_no,
                      name=name, link=where.get("link"), **{"class": where.get("class")},
                      peer=where.get("peer"), rx_bytes=stat.rx_bytes, tx_bytes=stat.tx_bytes,
                      rx_packets=stat.rx_packets, tx_packets=stat.tx_packets)
