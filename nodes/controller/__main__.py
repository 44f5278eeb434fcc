"""`python -m nodes.controller [--host A] [--port P] [--apps forwarding,monitor]`

The os-ken launcher: sets os-ken's OpenFlow listening address and port, loads the apps
(`nodes.controller.forwarding`, `nodes.controller.monitor` by default) and runs them until
SIGTERM. The network description comes from $CDNLAB_CONTROLLER_CONFIG (see config.py).
"""

from __future__ import annotations

# eventlet must patch the standard library before anything else imports it
from os_ken.lib import hub

hub.patch(thread=False)

import argparse  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

APPS = {"forwarding": "nodes.controller.forwarding", "monitor": "nodes.controller.monitor"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.controller", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6653)
    parser.add_argument("--apps", default="forwarding,monitor")
    args = parser.parse_args(argv)
    unknown = [a for a in args.apps.split(",") if a not in APPS]
    if unknown:
        print(f"controller: unknown app(s) {', '.join(unknown)} (known: {', '.join(APPS)})",
              file=sys.stderr)
        return 2
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager
    from os_ken.controller import controller  # noqa: F401  (registers the OpenFlow options)

    cfg.CONF(args=["--ofp-listen-host", args.host, "--ofp-tcp-listen-port", str(args.port)],
             project="os_ken")
    manager = AppManager.get_instance()
    manager.load_apps([APPS[a] for a in args.apps.split(",")] +
                      ["os_ken.controller.ofp_handler"])
    services = manager.instantiate_apps(**manager.create_contexts())

    def stop(_signum: int, _frame: object) -> None:
        for service in services:
            service.kill()

    signal.signal(signal.SIGTERM, stop)
    try:
        hub.joinall(services)
    finally:
        manager.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
