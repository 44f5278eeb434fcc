"""Measurements of a running emulation (engine): each figure's one owner.

    fidelity   configured against measured RTT, goodput and loss (ping, iperf3)
    counters   bytes on every link, sampled from the kernel's counters during a run
    transfer   a counted iperf3 transfer checked against the controller's port counters
    lateness   how late timers wake on this machine
"""
