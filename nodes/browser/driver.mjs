// The driver of a cdnlab browser viewer: starts Debian's Chromium headless through
// puppeteer-core (pinned in package.json), opens viewer.html with the session's
// configuration, and writes one JSON line to stdout per event: the page's dash.js events
// and, per HTTP response, who answered (address, status, cache headers). It exits when the
// page is done (ended, limit reached, error) or the session's time is up.
// Usage: node driver.mjs CONFIG.json   (written by nodes/browser/__main__.py)
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import puppeteer from "puppeteer-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const here = dirname(fileURLToPath(import.meta.url));
const out = (record) => process.stdout.write(JSON.stringify(record) + "\n");
const media = /\.(mpd|m4s)(\?|$)/;

// Chromium without anything that talks to the world: only the page's requests leave it.
const ARGS = [
  "--no-sandbox", "--disable-gpu", "--mute-audio", "--no-first-run",
  "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-default-apps",
  "--disable-domain-reliability", "--disable-client-side-phishing-detection",
  "--dns-prefetch-disable", "--disable-breakpad", "--metrics-recording-only",
  "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
];

// host_rules (nodes.browser --host-rules): names mapped to addresses instead of DNS
const args = config.host_rules ? [...ARGS, `--host-resolver-rules=${config.host_rules}`] : ARGS;
const browser = await puppeteer.launch({
  executablePath: config.chromium, headless: true, pipe: true, userDataDir: config.profile,
  args, protocolTimeout: 60000,
});
out({ kind: "browser", wall: Date.now() / 1000, pid: browser.process().pid,
      version: await browser.version() });
let code = 0;
try {
  const page = await browser.newPage();
  page.on("response", (response) => {
    const url = response.url();
    if (!media.test(url)) return;
    const headers = response.headers();
    const remote = response.remoteAddress() || {};
    out({ kind: "response", wall: Date.now() / 1000, url, status: response.status(),
          ip: remote.ip || null, cache: headers["x-cache-status"] || null,
          cluster: headers["x-cluster"] || null, from_cache: response.fromCache() });
  });
  page.on("requestfailed", (request) => {
    out({ kind: "request_failed", wall: Date.now() / 1000, url: request.url(),
          error: request.failure() ? request.failure().errorText : null });
  });
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warn") {
      out({ kind: "console", wall: Date.now() / 1000, level: message.type(),
            text: message.text().slice(0, 300) });
    }
  });
  await page.exposeFunction("cdnlabReport", (record) => out(record));
  await page.evaluateOnNewDocument((c) => { window.CDNLAB_CONFIG = c; }, config);
  await page.goto(pathToFileURL(join(here, "viewer.html")).href);
  await page.waitForFunction("window.cdnlabDone === true",
                             { timeout: config.timeout_s * 1000, polling: 250 });
} catch (err) {
  out({ kind: "driver_error", wall: Date.now() / 1000, message: String(err).slice(0, 300) });
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
