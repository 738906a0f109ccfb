// Page-speed benchmark of the two landing pages (not a test: it reports, it does not fail).
// Starts landing-local (LANDING_LOCAL_BIN, default ../../.bin/landing-local) on a free loopback
// port with a temporary data dir, then for each page:
//   - bytes transferred (compressed, headers included) and requests on a first load with an
//     empty cache, counted from Chrome's own network events (playwright-core + CDP);
//   - Lighthouse's mobile performance and accessibility scores (default mobile config:
//     Moto G-class viewport, simulated slow 4G and 4x CPU slowdown).
// Targets: ≤ 30 KB, ≤ 5 requests, performance ≥ 95, accessibility ≥ 95.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as chromeLauncher from "chrome-launcher";
import lighthouse from "lighthouse";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(process.env.LANDING_LOCAL_BIN || path.join(HERE, "../../.bin/landing-local"));
const CHROME = process.env.CHROME_PATH || "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const PAGES = ["/integrator/proftest/kenesary", "/expresscourse"];
const TARGETS = { kb: 30, requests: 5, performance: 95, accessibility: 95 };

function startServer() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "landing-bench-"));
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(LANDING_|NOTIFY_|PAYMENT_LINK_|CORS_|AMOCRM_)/.test(k)),
  );
  const child = spawn(BIN, [], {
    env: { ...env, LANDING_ADDR: "127.0.0.1:0", LANDING_DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      for (const line of buf.split("\n")) {
        try {
          const j = JSON.parse(line);
          if (j.message === "landing-local listening") resolve({ url: `http://${j.addr}`, child });
        } catch {
          // partial or non-JSON line
        }
      }
    });
    child.once("exit", (c) => reject(new Error(`landing-local exited with ${c}`)));
  });
}

/** Bytes on the wire and requests for a cold load, as a phone on the same network sees them. */
async function firstLoad(browser, url) {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  const requests = new Map();
  cdp.on("Network.requestWillBeSent", (e) => {
    if (!e.request.url.startsWith("data:")) requests.set(e.requestId, { url: e.request.url, bytes: 0 });
  });
  cdp.on("Network.loadingFinished", (e) => {
    const r = requests.get(e.requestId);
    if (r) r.bytes = e.encodedDataLength;
  });
  await page.goto(url, { waitUntil: "networkidle" });
  await context.close();
  const list = [...requests.values()];
  return { requests: list.length, bytes: list.reduce((a, r) => a + r.bytes, 0), list };
}

async function scores(url) {
  const chrome = await chromeLauncher.launch({ chromePath: CHROME, chromeFlags: FLAGS });
  try {
    const result = await lighthouse(url, {
      port: chrome.port,
      output: "json",
      logLevel: "error",
      onlyCategories: ["performance", "accessibility"],
    });
    const lhr = result.lhr;
    const failed = Object.values(lhr.audits)
      .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode === "binary")
      .map((a) => a.id);
    return {
      performance: Math.round(lhr.categories.performance.score * 100),
      accessibility: Math.round(lhr.categories.accessibility.score * 100),
      fcp: lhr.audits["first-contentful-paint"].displayValue,
      lcp: lhr.audits["largest-contentful-paint"].displayValue,
      tbt: lhr.audits["total-blocking-time"].displayValue,
      cls: lhr.audits["cumulative-layout-shift"].displayValue,
      failed,
      lhr,
    };
  } finally {
    await chrome.kill();
  }
}

const server = await startServer();
const browser = await chromium.launch({ executablePath: CHROME, headless: true, args: FLAGS });
const out = [];
try {
  for (const p of PAGES) {
    const url = server.url + p;
    const load = await firstLoad(browser, url);
    const s = await scores(url);
    const resultsDir = path.join(HERE, "results");
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, `${p.replaceAll("/", "_").replace(/^_/, "")}.lighthouse.json`), JSON.stringify(s.lhr));
    out.push({
      page: p,
      kb: +(load.bytes / 1024).toFixed(1),
      requests: load.requests,
      performance: s.performance,
      accessibility: s.accessibility,
      fcp: s.fcp,
      lcp: s.lcp,
      tbt: s.tbt,
      cls: s.cls,
      failedAudits: s.failed.join(", ") || "-",
      files: load.list.map((r) => `${new URL(r.url).pathname} ${r.bytes} B`).join("; "),
    });
  }
} finally {
  await browser.close();
  server.child.kill("SIGTERM");
}

const date = new Date().toISOString().slice(0, 10);
console.log(`landing pages, ${date}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${os.platform()} ${os.release()}, chromium at ${CHROME}`);
console.log(`targets: ≤ ${TARGETS.kb} KB, ≤ ${TARGETS.requests} requests, performance ≥ ${TARGETS.performance}, accessibility ≥ ${TARGETS.accessibility}\n`);
console.log("| page | KB transferred | requests | performance | accessibility | FCP | LCP | TBT | CLS |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of out) {
  console.log(`| ${r.page} | ${r.kb} | ${r.requests} | ${r.performance} | ${r.accessibility} | ${r.fcp} | ${r.lcp} | ${r.tbt} | ${r.cls} |`);
}
for (const r of out) console.log(`\n${r.page}: ${r.files}\n  binary audits not passed: ${r.failedAudits}`);
const missed = out.filter(
  (r) => r.kb > TARGETS.kb || r.requests > TARGETS.requests || r.performance < TARGETS.performance || r.accessibility < TARGETS.accessibility,
);
console.log(missed.length ? `\nMISSED a target: ${missed.map((r) => r.page).join(", ")}` : "\nall targets met");
