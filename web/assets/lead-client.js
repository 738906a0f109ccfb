// lead-client.js — sends a landing-page lead so that it is never lost and never doubled.
// API and guarantees: web/README.md ("The browser client"). No dependencies, no build step.
//
// - One Idempotency-Key per submission (header and body `idempotencyKey`), kept through every
//   retry, reload and beacon: however often it arrives, the server stores one lead.
// - Network errors, 5xx, 408, 409, 429 are retried for as long as the page is open (Retry-After,
//   else exponential backoff with jitter, 1 s … 30 s). The submission waits in localStorage until
//   a 2xx is seen; the next page load sends it again, and a page that closes hands it to
//   navigator.sendBeacon.
// - First-touch attribution: UTM and click ids of the first visit are kept in localStorage.

const PENDING_KEY = "landing:pending";
const FIRST_TOUCH_KEY = "landing:first-touch";
const UTM = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"];
const CLICK_IDS = ["gclid", "fbclid", "yclid", "ttclid", "msclkid"];
/** Fields a visitor can correct; a 422 on any other field is ours to fix, not theirs. */
const VISITOR_FIELDS = ["name", "phone", "email", "paymentMethod"];
const MAX_TEXT = 512; // the API's limit for utm_*, referrer, pageUrl
const ATTEMPT_TIMEOUT_MS = 15000;
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const RETRY_AFTER_MAX_MS = 300000;

// ------------------------------------------------------------------ storage (never throws)

function load(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

function save(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or full storage: the submission still goes out, it just cannot outlive the page.
  }
}

function pendingMap() {
  const m = load(PENDING_KEY);
  return m && typeof m === "object" ? m : {};
}

function storePending(entry) {
  const m = pendingMap();
  m[entry.path] = entry;
  save(PENDING_KEY, m);
}

function forgetPending(entry) {
  const m = pendingMap();
  // Only this submission: a newer one for the same form must survive.
  if (m[entry.path] && m[entry.path].key === entry.key) {
    delete m[entry.path];
    save(PENDING_KEY, Object.keys(m).length ? m : null);
  }
}

/** The submission for `path` (e.g. "/api/landing/submit") that has not seen a 2xx yet, if any. */
export function pending(path) {
  const e = pendingMap()[path];
  return e && e.key && e.body && e.url ? e : null;
}

// ------------------------------------------------------------------ ids and attribution

/** A UUID v4: crypto.randomUUID where there is one, else built from getRandomValues. */
export function newKey() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const b = new Uint8Array(16);
  c.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Trimmed, control characters removed, at most 512 characters: what the API accepts. */
function clean(v) {
  if (typeof v !== "string") return "";
  // eslint-disable-next-line no-control-regex
  return v.replace(/[\u0000-\u001f\u007f-\u009f]/g, "").trim().slice(0, MAX_TEXT);
}

function touchFrom(href) {
  let params;
  try {
    params = new URL(href).searchParams;
  } catch {
    return null;
  }
  const utm = {};
  const clickIds = {};
  for (const k of UTM) if (clean(params.get(k))) utm[k] = clean(params.get(k));
  for (const k of CLICK_IDS) if (clean(params.get(k))) clickIds[k] = clean(params.get(k));
  if (!Object.keys(utm).length && !Object.keys(clickIds).length) return null;
  return { utm, clickIds, at: new Date().toISOString(), pageUrl: clean(href) };
}

/**
 * The attribution of a submission from this page: the URL's UTM and click ids when it has any
 * (stored as the first touch if none is stored yet), else the stored first touch.
 * Returns {utm: {utm_source…}, clickIds: {gclid…}, firstTouch: {at, pageUrl} | null}.
 */
export function attribution(href = location.href) {
  const now = touchFrom(href);
  const first = load(FIRST_TOUCH_KEY);
  if (now) {
    if (!first) save(FIRST_TOUCH_KEY, now);
    return { utm: now.utm, clickIds: now.clickIds, firstTouch: null };
  }
  if (first && typeof first === "object") {
    return {
      utm: first.utm || {},
      clickIds: first.clickIds || {},
      firstTouch: { at: first.at, pageUrl: first.pageUrl },
    };
  }
  return { utm: {}, clickIds: {}, firstTouch: null };
}

/** `<html data-api-base>`, else `<meta name="landing-api" content>`, else "" (same origin). */
export function apiBase() {
  const d = document.documentElement.getAttribute("data-api-base");
  const m = document.querySelector('meta[name="landing-api"]');
  return ((d || (m && m.getAttribute("content")) || "").trim()).replace(/\/+$/, "");
}

// ------------------------------------------------------------------ sending

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves on the first of: `ms` passed, the browser came back online, the tab became visible. */
function pause(ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      removeEventListener("online", done);
      document.removeEventListener("visibilitychange", visible);
      resolve();
    };
    const visible = () => document.visibilityState === "visible" && done();
    const t = setTimeout(done, ms);
    addEventListener("online", done);
    document.addEventListener("visibilitychange", visible);
  });
}

function retryable(status) {
  return status >= 500 || status === 408 || status === 409 || status === 429;
}

function backoff(attempt) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}

function retryAfterMs(res) {
  const v = res && res.headers.get("Retry-After");
  if (!v) return null;
  const secs = Number(v);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) && ms >= 0 ? Math.min(ms, RETRY_AFTER_MAX_MS) : null;
}

async function attempt(entry) {
  const ctl = typeof AbortController === "function" ? new AbortController() : null;
  const timer = ctl && setTimeout(() => ctl.abort(), ATTEMPT_TIMEOUT_MS);
  try {
    return await fetch(entry.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": entry.key },
      body: JSON.stringify(entry.body),
      credentials: "omit",
      cache: "no-store",
      signal: ctl ? ctl.signal : undefined,
    });
  } catch {
    return null; // offline, refused, aborted: all the same to the visitor
  } finally {
    if (timer) clearTimeout(timer);
  }
}

async function readJson(res) {
  try {
    return await res.json();
  } catch {
    return {};
  }
}

/** Sends `entry` until the server answers something final. Never rejects. */
async function deliver(entry, onState) {
  for (let n = 1; ; n++) {
    const res = await attempt(entry);
    if (res && res.ok) {
      forgetPending(entry);
      return { ok: true, status: res.status, body: await readJson(res), entry };
    }
    if (res && !retryable(res.status)) {
      // Refused: nothing was stored, so nothing is waiting; the visitor's input is still in the form.
      forgetPending(entry);
      return { ok: false, status: res.status, body: await readJson(res), entry };
    }
    const wait = retryAfterMs(res) ?? backoff(n);
    onState("retrying", { attempt: n, status: res ? res.status : 0, waitMs: wait });
    await pause(wait);
  }
}

const inFlight = new Map(); // path → promise: a double click is one request chain

function run(entry, onState) {
  const running = inFlight.get(entry.path);
  if (running) return running;
  const p = (async () => {
    let result = await deliver(entry, onState);
    const fields = result.body && result.body.fields;
    if (
      result.status === 422 &&
      result.body.error === "validation_failed" &&
      fields &&
      Object.keys(fields).length &&
      Object.keys(fields).every((f) => !VISITOR_FIELDS.includes(f))
    ) {
      // Only attribution was refused (an odd ad URL, say): the lead matters more; send it without.
      const body = { ...entry.body };
      for (const f of Object.keys(fields)) delete body[f];
      const key = newKey();
      entry = { ...entry, key, body: { ...body, idempotencyKey: key } };
      storePending(entry);
      result = await deliver(entry, onState);
    }
    return result;
  })().finally(() => inFlight.delete(entry.path));
  inFlight.set(entry.path, p);
  return p;
}

/**
 * Sends a lead. `path` is the API path ("/api/landing/proftest" or "/api/landing/submit");
 * `fields` the form's fields (name, phone, email, paymentMethod, website, slug…);
 * `options.metadata` an object merged into `metadata` (click ids are added as `clickIds`);
 * `options.onState(state, info)` is told "sending", then "retrying" ({attempt, status, waitMs})
 * while the network or the server is down.
 * Resolves (never rejects) with {ok, status, body, entry}: ok=true on a 2xx (body: leadId,
 * sourceCampaign, paymentLink?), else the refusal (422 with body.fields, 400, 413, 415 …).
 * While a submission for `path` is under way, another call returns the same promise.
 */
export function submit(path, fields, options = {}) {
  const onState = options.onState || (() => {});
  const running = inFlight.get(path);
  if (running) return running;
  const a = attribution();
  const key = newKey();
  const body = {};
  for (const [k, v] of Object.entries(fields)) if (v != null) body[k] = v;
  for (const [k, v] of Object.entries(a.utm)) body[k] = v;
  body.pageUrl = clean(location.href);
  const referrer = clean(document.referrer);
  if (referrer) body.referrer = referrer;
  const metadata = { ...(options.metadata || {}) };
  if (Object.keys(a.clickIds).length) metadata.clickIds = a.clickIds;
  if (a.firstTouch) metadata.firstTouch = a.firstTouch;
  if (Object.keys(metadata).length) body.metadata = metadata;
  body.idempotencyKey = key;
  const entry = { path, url: apiBase() + path, key, body, at: Date.now() };
  storePending(entry);
  onState("sending", {});
  return run(entry, onState);
}

/**
 * Sends again the submission for `path` that an earlier page left unsent (same key: the server
 * replays, never duplicates). Resolves like `submit`, or to null when nothing is pending.
 */
export function resume(path, options = {}) {
  const entry = pending(path);
  if (!entry) return Promise.resolve(null);
  const onState = options.onState || (() => {});
  onState("resuming", {});
  return run(entry, onState);
}

/** Keys already handed to sendBeacon by this page: pagehide and visibilitychange both fire on the
 *  way out, and two beacons of one submission would race each other at the server. */
const beaconed = new Set();

/** Hands every unsent submission to sendBeacon (text/plain JSON: no CORS preflight, key in body). */
function beaconAll() {
  if (!navigator.sendBeacon) return;
  for (const entry of Object.values(pendingMap())) {
    if (!entry || !entry.url || !entry.body || beaconed.has(entry.key)) continue;
    beaconed.add(entry.key);
    try {
      const blob = new Blob([JSON.stringify(entry.body)], { type: "text/plain;charset=UTF-8" });
      navigator.sendBeacon(entry.url, blob);
    } catch {
      // Nothing more can be done on the way out; the next visit sends it.
    }
  }
}

addEventListener("pagehide", beaconAll);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") beaconAll();
});
// Record the first touch on arrival, not only at submission: a visitor may leave and come back.
attribution();

// ------------------------------------------------------------------ forms (markup contract)

/** The page's texts (`<script type="application/json" id="lead-texts">`). */
export function texts() {
  const el = document.getElementById("lead-texts");
  try {
    return JSON.parse(el ? el.textContent : "{}");
  } catch {
    return {};
  }
}

function fieldError(form, name) {
  return form.querySelector(`#${name}-error`);
}

function setStatus(form, text, kind) {
  const el = form.querySelector("[data-status]");
  if (!el) return;
  // Only on change: a live region re-announces every write.
  if (el.textContent !== text) el.textContent = text;
  el.dataset.kind = kind || "";
}

function clearErrors(form) {
  for (const el of form.querySelectorAll('[aria-invalid="true"]')) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field-error")) {
    el.textContent = "";
    el.hidden = true;
  }
}

/** Marks fields invalid ({name: "Russian message"}), announces it and focuses the first. */
export function showErrors(form, errors, t = texts()) {
  clearErrors(form);
  for (const [name, message] of Object.entries(errors)) {
    const inputs = form.querySelectorAll(`[name="${name}"]`);
    const err = fieldError(form, name);
    if (!inputs.length || !err) continue;
    for (const i of inputs) i.setAttribute("aria-invalid", "true");
    err.textContent = message;
    err.hidden = false;
  }
  setStatus(form, (t.status && t.status.invalid) || "", "error");
  // The first bad field in the page's order, whatever order the errors came in.
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

/** The server's English field errors in the page's words. */
function translate(fields, t) {
  const e = t.errors || {};
  const out = {};
  for (const [name, msg] of Object.entries(fields || {})) {
    if (/phone or email is required/.test(msg) && (name === "phone" || name === "email")) {
      out[name] = e.contact;
    } else {
      out[name] = e[name] || e.other;
    }
  }
  return out;
}

function value(form, name) {
  const el = form.elements.namedItem(name);
  if (!el) return undefined;
  return typeof el.value === "string" ? el.value : undefined;
}

/**
 * Wires a form of the markup contract to `submit`: fields `name`, `phone`, `email`, the honeypot,
 * optional radios `paymentMethod`; a `[data-status]` live region; a submit `<button>`.
 * options: path (default form's data-endpoint), extra() → {fields, metadata} added to the body,
 * check(fields) → {name: message} of the page's own checks, onSent(result) after a 2xx.
 * Returns {resume()} to send what an earlier page left unsent, with the same feedback.
 */
export function bindForm(form, options = {}) {
  const t = texts();
  const path = options.path || form.dataset.endpoint;
  const button = form.querySelector('button[type="submit"]');
  let busy = false;

  const onState = (state) => {
    const s = t.status || {};
    if (state === "sending") setStatus(form, s.sending, "wait");
    else if (state === "resuming") setStatus(form, s.resuming, "wait");
    else if (state === "retrying") setStatus(form, s.retrying, "wait");
  };

  const finish = (result) => {
    busy = false;
    if (button) button.removeAttribute("aria-disabled");
    if (!result) return;
    if (result.ok) {
      setStatus(form, (t.status && t.status.sent) || "", "ok");
      if (options.onSent) options.onSent(result);
    } else if (result.status === 422 && result.body && result.body.error === "validation_failed") {
      showErrors(form, translate(result.body.fields, t), t);
    } else if (result.status === 413) {
      setStatus(form, t.status && t.status.tooLarge, "error");
    } else {
      setStatus(form, t.status && t.status.rejected, "error");
    }
  };

  const start = (promise) => {
    busy = true;
    if (button) button.setAttribute("aria-disabled", "true");
    return promise.then((r) => {
      finish(r);
      return r;
    });
  };

  for (const el of form.querySelectorAll("input")) {
    el.addEventListener("input", () => {
      if (el.getAttribute("aria-invalid") !== "true") return;
      for (const i of form.querySelectorAll(`[name="${el.name}"]`)) i.removeAttribute("aria-invalid");
      const err = fieldError(form, el.name);
      if (err) err.hidden = true;
    });
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (busy) return; // a double click is one request chain
    const fields = {
      name: (value(form, "name") || "").trim(),
      phone: (value(form, "phone") || "").trim(),
      email: (value(form, "email") || "").trim(),
    };
    // The honeypot's name is HONEYPOT_FIELD's, as the page was rendered with it.
    const trap = form.querySelector("[data-honeypot] input");
    if (trap && trap.name) fields[trap.name] = trap.value || "";
    const pm = form.querySelector('input[name="paymentMethod"]:checked');
    if (form.querySelector('input[name="paymentMethod"]')) fields.paymentMethod = pm ? pm.value : "";
    const extra = options.extra ? options.extra() : {};
    Object.assign(fields, extra.fields || {});

    const e = t.errors || {};
    const errors = {};
    if (!fields.name) errors.name = e.name;
    if (!fields.phone && !fields.email) errors.phone = e.contact;
    if ("paymentMethod" in fields && !fields.paymentMethod) errors.paymentMethod = e.paymentMethod;
    Object.assign(errors, options.check ? options.check(fields) : {});
    if (Object.keys(errors).length) {
      showErrors(form, errors, t);
      return;
    }
    clearErrors(form);
    start(submit(path, fields, { metadata: extra.metadata, onState }));
  });

  return {
    resume() {
      if (!pending(path)) return Promise.resolve(null);
      return start(resume(path, { onState }));
    },
  };
}
