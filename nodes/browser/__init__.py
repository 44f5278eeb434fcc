"""Browser viewers: dash.js in headless Chromium on an emulated host, as a node program.

`driver.mjs` (Node, puppeteer-core) runs one Chromium per session and relays dash.js's
events; `viewer.html`/`viewer.js` is the page; `records.py` turns those events into the
Python player's records; `usage.py` measures each viewer's CPU and memory. The Node
packages are pinned in `package.json`/`package-lock.json` and installed by `make browser`.
"""
