"""Results: what a run measured, turned into the bundle's summary, plots and report.

    summary   summary.json from the bundle's events (DNS truth, caches, network, fill,
              players, fidelity)
    plots     the PNGs of the report
    report    report.md, and `cdnlab compare` of several bundles
"""
