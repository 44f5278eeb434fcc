"""L2 forwarding for every switch: learn where each source MAC lives, flood what is not
known yet (ARP requests among it), and install a flow per (in port, destination) once the
destination is known. Flows have no timeouts: if the controller dies, what was learnt keeps
forwarding, and Open vSwitch's standalone fail mode handles the rest."""

from __future__ import annotations

from typing import Any, ClassVar

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import ether_types, ethernet, packet
from os_ken.ofproto import ofproto_v1_3


class Forwarding(app_manager.OSKenApp):  # type: ignore[misc]
    OFP_VERSIONS: ClassVar[list[int]] = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.where: dict[int, dict[str, int]] = {}  # dpid → MAC → port

    def _flow(self, datapath: Any, priority: int, match: Any, actions: list[Any]) -> None:
        parser = datapath.ofproto_parser
        ofp = datapath.ofproto
        instructions = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        datapath.send_msg(parser.OFPFlowMod(datapath=datapath, priority=priority, match=match,
                                            instructions=instructions))

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def on_features(self, event: Any) -> None:
        datapath = event.msg.datapath
        parser = datapath.ofproto_parser
        ofp = datapath.ofproto
        # table miss: to the controller, whole packets
        self._flow(datapath, 0, parser.OFPMatch(),
                   [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)])

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def on_packet_in(self, event: Any) -> None:
        message = event.msg
        datapath = message.datapath
        ofp = datapath.ofproto
        parser = datapath.ofproto_parser
        in_port = message.match["in_port"]
        frame = packet.Packet(message.data).get_protocol(ethernet.ethernet)
        if frame is None or frame.ethertype == ether_types.ETH_TYPE_LLDP:
            return
        table = self.where.setdefault(datapath.id, {})
        table[frame.src] = in_port
        out_port = table.get(frame.dst, ofp.OFPP_FLOOD)
        actions = [parser.OFPActionOutput(out_port)]
        if out_port != ofp.OFPP_FLOOD:
            self._flow(datapath, 1, parser.OFPMatch(in_port=in_port, eth_dst=frame.dst),
                       actions)
        data = message.data if message.buffer_id == ofp.OFP_NO_BUFFER else None
        datapath.send_msg(parser.OFPPacketOut(datapath=datapath, buffer_id=message.buffer_id,
                                              in_port=in_port, actions=actions, data=data))
