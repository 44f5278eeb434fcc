"""The SDN controller (`python -m nodes.controller`): os-ken apps for the emulated switches,
over OpenFlow 1.3.

    __main__    the launcher (os-ken ships no manager command): options, then the apps
    forwarding  L2 learning for the IXP fabric and cluster switches; ARP and unknown
                destinations flooded; learnt flows never expire, so they outlive the
                controller
    monitor     port counters of every switch every interval, as JSON lines mapped to
                the topology's link names and link classes (access, ixp, transit…)

The apps read the engine's description of the network (port names → links) from the file
named by CDNLAB_CONTROLLER_CONFIG.
"""
