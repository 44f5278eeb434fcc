"""What the engine tells the controller apps, as a JSON file named by the environment
variable CDNLAB_CONTROLLER_CONFIG:

    {"events": "/run/…/controller.jsonl", "epoch": 1795…, "interval_s": 1.0,
     "ports": {"acc_a-e1": {"switch": "acc_a", "link": "a1--acc_a", "class": "access",
                            "peer": "a1"}, …}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV = "CDNLAB_CONTROLLER_CONFIG"


def load() -> dict[str, Any]:
    path = os.environ.get(ENV)
    if not path:
        return {"ports": {}, "interval_s": 1.0, "events": None, "epoch": None}
    return dict(json.loads(Path(path).read_text()))
