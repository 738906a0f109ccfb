// Shared by the browser tests: a real landing-local per test (own data dir, port), Debian's
// chromium through playwright-core, the SQLite file and the outbox read directly, a recording
// proxy, and polling instead of sleeps.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { chromium } from "playwright-core";

export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The binary under test: LANDING_LOCAL_BIN, else ../.bin/landing-local (infra/web-test.sh puts it there). */
export const BIN = process.env.LANDING_LOCAL_BIN
  ? path.resolve(process.env.LANDING_LOCAL_BIN)
  : path.resolve(WEB_DIR, "../.bin/landing-local");
export const ARTIFACTS = path.join(WEB_DIR, "test-artifacts");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

// landing-local refuses unknown variables with its prefixes; none of ours may leak into it.
const OURS = /^(LANDING_|NOTIFY_|PAYMENT_LINK_|CORS_|AMOCRM_|EMAIL_|SMS_|SES_|HONEYPOT_)/;

export function tempDir(prefix = "landing-web-") {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A TCP port that was free a moment ago (for a server that must come back on the same one). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts landing-local and resolves once it says "landing-local listening".
 * Returns {url, port, dataDir, logs, stop(), kill()}.
 */
export async function startServer({ dataDir = tempDir(), port = 0, env = {} } = {}) {
  if (!existsSync(BIN)) throw new Error(`no landing-local at ${BIN}: run infra/web-test.sh or set LANDING_LOCAL_BIN`);
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !OURS.test(k)));
  const child = spawn(BIN, [], {
    env: {
      ...base,
      LANDING_ADDR: `127.0.0.1:${port}`,
      LANDING_DATA_DIR: dataDir,
      NOTIFY_DELAY: "1s",
      // The tests expect the follow-ups whatever the hour they run at.
      NOTIFY_SMS_WINDOW: "always",
      RUST_LOG: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs = [];
  let buf = "";
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`landing-local did not start:\n${logs.join("\n")}`)), 20000);
    child.stdout.on("data", (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        try {
          const j = JSON.parse(line);
          if (j.message === "landing-local listening") {
            clearTimeout(timer);
            resolve(j.addr);
          }
        } catch {
          // not JSON: keep it in the log only
        }
      }
    });
    child.stderr.on("data", (d) => logs.push(String(d)));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`landing-local exited with ${code}:\n${logs.join("\n")}`));
    });
  });
  const addr = await listening;
  const exited = new Promise((r) => child.once("exit", r));
  const stop = async (signal = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    url: `http://${addr}`,
    port: Number(addr.split(":").pop()),
    dataDir,
    logs,
    stop,
    kill: () => stop("SIGKILL"),
  };
}

/** Rows of the data dir's SQLite file, read through its own connection. */
export function query(dataDir, sql, ...params) {
  const file = path.join(dataDir, "landing.db");
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params);
  } finally {
    db.close();
  }
}

export const leads = (dataDir) =>
  query(dataDir, "SELECT * FROM landing_leads ORDER BY created_at").map((r) => ({
    ...r,
    metadata: r.metadata ? JSON.parse(r.metadata) : null,
  }));

export function outbox(dataDir) {
  const file = path.join(dataDir, "outbox.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** Polls `fn` until it returns a truthy value; that value is returned. No fixed sleeps. */
export async function waitFor(fn, { timeout = 15000, interval = 100, what = "condition" } = {}) {
  const until = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

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

/** Debian's chromium; playwright gives every launch a fresh temporary --user-data-dir. */
export function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}

export const PHONE = {
  viewport: { width: 360, height: 740 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  locale: "ru-RU",
  userAgent:
    "Mozilla/5.0 (Linux; Android 13; SM-A145F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
};
export const DESKTOP = { viewport: { width: 1280, height: 800 }, locale: "ru-RU" };

/** Fails the test on any request that leaves 127.0.0.1 (the pages make no third-party request). */
export function guard(page) {
  const foreign = [];
  page.on("request", (r) => {
    const u = r.url();
    if (!/^(http:\/\/127\.0\.0\.1[:/]|data:|about:)/.test(u)) foreign.push(u);
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  return { foreign, errors };
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** A content.json whose pages post to the API at `apiBase` (another origin). */
export function contentFile(apiBase) {
  const c = JSON.parse(readFileSync(path.join(WEB_DIR, "content.json"), "utf8"));
  c.site.apiBase = apiBase;
  const file = path.join(tempDir("landing-content-"), "content.json");
  writeFileSync(file, JSON.stringify(c));
  return file;
}

/**
 * An HTTP proxy in front of `target` that records every request (method, path, headers, body)
 * and can hold matching requests until released: "the API answers slowly".
 */
export async function startProxy(initialTarget) {
  let target = initialTarget;
  const requests = [];
  let hold = null;
  const held = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const rec = { method: req.method, url: req.url, headers: req.headers, body: body.toString("utf8"), at: Date.now() };
      requests.push(rec);
      const forward = () => {
        const up = http.request(
          new URL(req.url, target),
          { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
          (r) => {
            rec.status = r.statusCode;
            res.writeHead(r.statusCode, r.headers);
            r.pipe(res);
          },
        );
        up.on("error", () => {
          rec.status = 502;
          res.destroy();
        });
        up.end(body);
      };
      if (hold && hold(rec)) held.push(forward);
      else forward();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setTarget(t) {
      target = t;
    },
    hold(fn) {
      hold = fn;
    },
    release() {
      hold = null;
      for (const f of held.splice(0)) f();
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(r);
      }),
  };
}

/** Answers the ProfTest's questions, picking options[pick(i)] (0-based) on question i. */
export async function answerQuiz(page, pick, { touch = true } = {}) {
  const total = Number(await page.locator("#proftest").getAttribute("data-total"));
  for (let i = 0; i < total; i++) {
    const step = page.locator(`[data-step="${i + 1}"]`);
    const option = step.locator("label.option").nth(pick(i));
    const next = step.locator("[data-next]");
    if (touch) {
      await option.tap();
      await next.tap();
    } else {
      await option.click();
      await next.click();
    }
  }
  return total;
}
