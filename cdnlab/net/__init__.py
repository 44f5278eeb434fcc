"""The engine's network stage: a topology brought up as a real Mininet network.

    emulation     `Emulation`: start and stop, the one object the other stages hold
    build         the build steps: nodes, links, controller, addresses and routes, shapes
    node_classes  Mininet node classes: hosts, routers, link namespaces, Linux bridges
    shaping/      the shaping backends behind one `LinkShape` (netem, nfqueue)
    changes       changes to running links: a new shape, a cut, a bandwidth trace
    replay        the thread that makes a link's rate follow a trace
    paths         what a routed path should measure as the links are shaped now
    controller    the os-ken OpenFlow controller process
    cpu_awake     CPUs kept out of idle while a network is up; sched: timer primitives
    ledger        what a run created, kept on disk so `cdnlab clean` can undo it
    netns         sockets made inside a host's namespace from the engine's process
"""
