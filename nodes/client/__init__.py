"""Viewers (`python -m nodes.client`): DASH players that resolve the CDN name through the
redirector, stream from the cluster it chose, and log every segment; and the ABR core they
share with the offline trace simulator.

    abr        ABR algorithms: one small class each, one decision method, the same inputs
    buffer     the playback buffer: startup, drain at playback speed, stalls
    qoe        per-session metrics from the segment log (linear QoE of ABR research)
    simulate   the offline simulator: a bandwidth trace against the same ABR classes
    dnsclient  a stub resolver: one real DNS query, answers with their TTL
    http       persistent HTTP/1.1 connections, redirects, cache-status headers
    player     one live session; many run in one asyncio loop
"""
