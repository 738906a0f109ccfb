// A lead survives what happens to it between the button and the database: the API down at the
// moment of the press, a reload while it is down, the page closing before the answer, and the
// pages living on another origin than the API.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PHONE,
  answerQuiz,
  contentFile,
  freePort,
  guard,
  launch,
  leads,
  query,
  startProxy,
  startServer,
  tempDir,
  waitFor,
} from "./helpers.js";

const RETRYING = "Нет связи — продолжаем попытки, не закрывайте страницу";
let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const statusText = (page) => page.locator('#checkout [role="status"], #proftest [role="status"]').first().innerText();

test("the server is down when the visitor presses the button: the page keeps trying, one lead once it is back", async () => {
  const port = await freePort();
  const dataDir = tempDir();
  let api = await startServer({ port, dataDir });
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  const posts = [];
  page.on("request", (r) => r.method() === "POST" && posts.push(r.headers()["idempotency-key"]));
  await page.goto(`${api.url}/expresscourse/arystan?utm_source=tiktok`);
  await page.getByLabel("Имя", { exact: true }).fill("Нет Связи");
  await page.getByLabel("Телефон", { exact: true }).fill("+7 705 111 22 01");
  await page.locator('input[name="paymentMethod"][value="halyk"]').check();
  await api.stop();
  await page.getByRole("button", { name: /Записаться/ }).tap();
  await waitFor(async () => (await statusText(page)) === RETRYING, { what: "the retrying message" });
  await waitFor(() => posts.length >= 2, { what: "a retry", timeout: 10000 });
  assert.equal(leads(dataDir).length, 0);

  api = await startServer({ port, dataDir });
  try {
    await page.locator("#done").waitFor({ state: "visible", timeout: 40000 });
    const rows = leads(dataDir);
    assert.equal(rows.length, 1, "exactly one lead");
    assert.equal(rows[0].source_campaign, "expresscourse_arystan");
    assert.equal(rows[0].payment_method, "halyk");
    assert.equal(rows[0].utm_source, "tiktok");
    assert.equal(new Set(posts).size, 1, "every attempt carried the same Idempotency-Key");
    assert.equal(query(dataDir, "SELECT key FROM idempotency")[0].key, `expresscourse:${posts[0]}`);
    assert.equal(await page.evaluate(() => localStorage.getItem("landing:pending")), null, "forgotten after the 2xx");
  } finally {
    await context.close();
    await api.stop();
  }
});

describe("pages on another origin than the API (CORS_ALLOWED_ORIGINS)", () => {
  let apiPort;
  let api;
  let pages;
  const apiDir = tempDir();
  before(async () => {
    apiPort = await freePort();
    pages = await startServer({ env: { LANDING_WEB_CONTENT: contentFile(`http://127.0.0.1:${apiPort}`) } });
    api = await startServer({ port: apiPort, dataDir: apiDir, env: { CORS_ALLOWED_ORIGINS: pages.url } });
  });
  after(async () => {
    await api?.stop();
    await pages?.stop();
  });

  test("a page from the other origin posts to the API and gets its answer", async () => {
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    const g = guard(page);
    await page.goto(`${pages.url}/integrator/proftest/cors?utm_source=vk`);
    await page.locator("[data-start]").tap();
    await answerQuiz(page, () => 3 % 3);
    await page.getByLabel("Имя", { exact: true }).fill("Другой Домен");
    await page.getByLabel("Телефон", { exact: true }).fill("+7 705 111 22 02");
    await page.getByRole("button", { name: "Узнать результат" }).tap();
    await page.locator("#result").waitFor({ state: "visible" });
    const [lead] = await waitFor(() => leads(apiDir).filter((l) => l.name === "Другой Домен").length && leads(apiDir).filter((l) => l.name === "Другой Домен"));
    assert.equal(lead.source_campaign, "proftest_cors");
    assert.equal(lead.utm_source, "vk");
    assert.equal(leads(pages.dataDir).length, 0, "the pages' own server stored nothing");
    assert.deepEqual(g.errors, [], "no CSP or CORS error");
    await context.close();
  });

  test("a reload while the API is down sends the same submission again: one lead, result shown", async () => {
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    await page.goto(`${pages.url}/integrator/proftest/reload`);
    await page.locator("[data-start]").tap();
    await answerQuiz(page, () => 1);
    await page.getByLabel("Имя", { exact: true }).fill("Перезагрузка");
    await page.getByLabel("Email", { exact: true }).fill("reload@mail.kz");
    await api.stop();
    await page.getByRole("button", { name: "Узнать результат" }).tap();
    await waitFor(async () => (await statusText(page)) === RETRYING, { what: "the retrying message" });
    const pendingBefore = JSON.parse(await page.evaluate(() => localStorage.getItem("landing:pending")));
    const key = pendingBefore["/api/landing/proftest"].key;

    await page.reload();
    // The page came back from the pages' origin and picked the submission up again.
    await waitFor(async () => [RETRYING, "Отправляем заявку, которую вы оставили раньше…"].includes(await statusText(page)), { what: "the resumed submission" });
    assert.equal(await page.getByLabel("Email", { exact: true }).inputValue(), "reload@mail.kz");
    api = await startServer({ port: apiPort, dataDir: apiDir, env: { CORS_ALLOWED_ORIGINS: pages.url } });
    await page.locator("#result").waitFor({ state: "visible", timeout: 40000 });
    const mine = leads(apiDir).filter((l) => l.email === "reload@mail.kz");
    assert.equal(mine.length, 1, "exactly one lead");
    assert.equal(mine[0].source_campaign, "proftest_reload");
    assert.equal(mine[0].metadata.answers.length, 12);
    assert.ok(await page.locator(`#result [data-result="${mine[0].metadata.resultKey}"]`).isVisible(), "the stored result is the one shown");
    assert.equal(query(apiDir, "SELECT COUNT(*) n FROM idempotency WHERE key = ?", `proftest:${key}`)[0].n, 1);
    await context.close();
  });
});

test("the page leaves while the API is slow: the beacon delivers the lead, once", async () => {
  const proxy = await startProxy(null);
  const pages = await startServer({ env: { LANDING_WEB_CONTENT: contentFile(proxy.url) } });
  const api = await startServer({ env: { CORS_ALLOWED_ORIGINS: pages.url } });
  proxy.setTarget(api.url);
  // The API "answers slowly": fetches (they carry the Idempotency-Key header) are held.
  proxy.hold((r) => r.method === "POST" && r.headers["idempotency-key"]);
  try {
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    await page.goto(`${pages.url}/expresscourse`);
    await page.getByLabel("Имя", { exact: true }).fill("Маяк");
    await page.getByLabel("Телефон", { exact: true }).fill("+7 705 111 22 03");
    await page.locator('input[name="paymentMethod"][value="robokassa"]').check();
    await page.getByRole("button", { name: /Записаться/ }).tap();
    const fetchReq = await waitFor(() => proxy.requests.find((r) => r.method === "POST" && r.headers["idempotency-key"]), { what: "the held fetch" });
    assert.equal(leads(api.dataDir).length, 0);
    await page.goto("about:blank");

    const beacon = await waitFor(() => proxy.requests.find((r) => r.method === "POST" && !r.headers["idempotency-key"]), { what: "the beacon" });
    assert.match(beacon.headers["content-type"], /^text\/plain;charset=UTF-8$/i);
    const body = JSON.parse(beacon.body);
    assert.equal(body.idempotencyKey, fetchReq.headers["idempotency-key"], "the beacon carries the same key in its body");
    await waitFor(() => beacon.status, { what: "the beacon's answer" });
    assert.equal(beacon.status, 201);
    // pagehide and visibilitychange both fire on the way out: still one beacon.
    await new Promise((r) => setTimeout(r, 300));
    const beacons = proxy.requests.filter((r) => r.method === "POST" && !r.headers["idempotency-key"]);
    assert.equal(beacons.length, 1, "one beacon per submission");
    const rows = leads(api.dataDir);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].payment_method, "robokassa");

    // The held fetch arrives after all: a replay, still one lead.
    proxy.release();
    await waitFor(() => fetchReq.status, { what: "the fetch's answer" });
    assert.equal(fetchReq.status, 200);
    assert.equal(leads(api.dataDir).length, 1);
    assert.equal(query(api.dataDir, "SELECT COUNT(*) n FROM idempotency")[0].n, 1);
    await context.close();
  } finally {
    proxy.release();
    await api.stop();
    await pages.stop();
    await proxy.close();
  }
});
