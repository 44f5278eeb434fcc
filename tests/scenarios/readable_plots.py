"""What every rendered plot of a real run must be: there, of a real size, and using its
canvas (ink across most rows and columns: not a white page, and not half of one, as the
RTT matrix once was)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image

EXPECTED = {"bitrate.png", "buffer.png", "clusters.png", "rtt_matrix.png", "hit_ratio.png",
            "utilisation.png", "fidelity.png"}


def assert_plots_readable(bundle: Path) -> None:
    plots = {p.name: p for p in (bundle / "plots").glob("*.png")}
    assert set(plots) >= EXPECTED, f"missing plots: {EXPECTED - set(plots)}"
    for name, path in plots.items():
        assert path.stat().st_size > 8000, f"{name} is suspiciously small"
        ink = matplotlib.image.imread(path)[..., :3].min(axis=2) < 0.9
        rows, columns = ink.any(axis=1).mean(), ink.any(axis=0).mean()
        assert rows > 0.7 and columns > 0.7, \
            f"{name}: ink on {100 * rows:.0f} % of rows, {100 * columns:.0f} % of columns"
