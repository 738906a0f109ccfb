// ExpressCourse checkout against a real landing-local: every payment method, the payment link,
// a refused phone, a double click and a slow network.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DESKTOP, PHONE, guard, launch, leads, query, screenshot, startServer, waitFor } from "./helpers.js";

const KASPI_LINK = "https://pay.kaspi.kz/pay/integrator-express";
let browser;
let server;
before(async () => {
  browser = await launch();
  server = await startServer({ env: { PAYMENT_LINK_KASPI: KASPI_LINK } });
});
after(async () => {
  await server?.stop();
  await browser?.close();
});

async function fill(page, { name, phone, email, method }) {
  await page.getByLabel("Имя", { exact: true }).fill(name);
  if (phone !== undefined) await page.getByLabel("Телефон", { exact: true }).fill(phone);
  if (email !== undefined) await page.getByLabel("Email", { exact: true }).fill(email);
  if (method) await page.locator(`input[name="paymentMethod"][value="${method}"]`).check();
}

const submitButton = (page) => page.getByRole("button", { name: /Записаться/ });

test("each payment method is stored on its lead, and the Kaspi payment link is offered", async () => {
  const cases = [
    { method: "kaspi", phone: "+7 (701) 555-00-01", link: KASPI_LINK },
    { method: "halyk", phone: "8 701 555 00 02", link: null },
    { method: "robokassa", phone: "87015550003", link: null },
  ];
  for (const [i, c] of cases.entries()) {
    const context = await browser.newContext(i === 0 ? PHONE : DESKTOP);
    const page = await context.newPage();
    const g = guard(page);
    await page.goto(`${server.url}/expresscourse`);
    if (i === 0) await screenshot(page, "expresscourse-360-initial");
    else if (i === 1) await screenshot(page, "expresscourse-1280-initial");
    await fill(page, { name: `Покупатель ${c.method}`, phone: c.phone, email: `${c.method}@mail.kz`, method: c.method });
    await submitButton(page).click();
    const done = page.locator("#done");
    await done.waitFor({ state: "visible" });
    await assert.doesNotReject(done.getByText("Менеджер позвонит вам").waitFor());
    await assert.doesNotReject(done.getByText("SMS и письмо").waitFor());
    const pay = page.getByRole("link", { name: "Оплатить сейчас" });
    if (c.link) {
      assert.equal(await pay.getAttribute("href"), c.link);
      assert.ok(await pay.isVisible());
    } else {
      assert.equal(await pay.isVisible(), false, "no link configured for this method");
    }
    if (i === 0) await screenshot(page, "expresscourse-360-done");
    else if (i === 1) await screenshot(page, "expresscourse-1280-done");
    const lead = await waitFor(() => leads(server.dataDir).find((l) => l.email === `${c.method}@mail.kz`), { what: `the ${c.method} lead` });
    assert.equal(lead.form, "expresscourse");
    assert.equal(lead.source_campaign, "expresscourse");
    assert.equal(lead.payment_method, c.method);
    assert.match(lead.phone, /^\+7701555000\d$/);
    assert.deepEqual(g.foreign, []);
    assert.deepEqual(g.errors, []);
    await context.close();
  }
  assert.equal(leads(server.dataDir).filter((l) => l.form === "expresscourse").length >= 3, true);
});

test("an invalid phone is named in Russian next to the field, announced, and nothing is stored", async () => {
  const before = leads(server.dataDir).length;
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  await page.goto(`${server.url}/integrator/expresscourse`);
  await fill(page, { name: "Ошибка", phone: "+7 123", method: "halyk" });
  const answers = [];
  page.on("response", (r) => r.url().endsWith("/api/landing/submit") && answers.push(r.status()));
  await submitButton(page).tap();
  const phone = page.getByLabel("Телефон", { exact: true });
  await waitFor(async () => (await phone.getAttribute("aria-invalid")) === "true", { what: "aria-invalid on the phone" });
  assert.deepEqual(answers, [422], "the server refused it, once");
  const error = page.locator("#phone-error");
  assert.ok(await error.isVisible());
  // The server says "is not a valid phone number" / "phone or email is required" (English).
  assert.equal(await error.innerText(), "Проверьте номер: например, +7 777 123 45 67");
  assert.equal(await page.locator("#email-error").innerText(), "Укажите телефон или email — иначе мы не сможем связаться с вами");
  assert.match(await phone.getAttribute("aria-describedby"), /phone-error/);
  assert.equal(await page.evaluate(() => document.activeElement.id), "phone", "focus moves to the bad field");
  assert.equal(await page.locator('[role="status"]').innerText(), "Проверьте поля, отмеченные красным.");
  // Both contacts wrong: each gets its own message.
  await page.getByLabel("Email", { exact: true }).fill("not-an-email");
  assert.equal(await phone.getAttribute("aria-invalid"), "true", "typing elsewhere keeps the phone marked");
  await submitButton(page).tap();
  await waitFor(() => answers.length === 2, { what: "the second answer" });
  await waitFor(async () => (await page.locator("#email-error").innerText()) === "Проверьте email: например, aigerim@mail.kz", { what: "the email message" });
  assert.equal(await error.innerText(), "Проверьте номер: например, +7 777 123 45 67");
  assert.deepEqual(answers, [422, 422]);
  await screenshot(page, "expresscourse-360-invalid");
  assert.equal(leads(server.dataDir).length, before, "nothing stored");
  assert.equal(query(server.dataDir, "SELECT COUNT(*) n FROM landing_leads WHERE name = 'Ошибка'")[0].n, 0);
  await context.close();
});

test("a double click is one request chain and one lead", async () => {
  const context = await browser.newContext(DESKTOP);
  const page = await context.newPage();
  const posts = [];
  page.on("request", (r) => r.method() === "POST" && posts.push(r));
  await page.goto(`${server.url}/expresscourse`);
  await fill(page, { name: "Двойной Клик", phone: "+77015550010", method: "kaspi" });
  await submitButton(page).dblclick();
  await page.locator("#done").waitFor({ state: "visible" });
  const rows = await waitFor(() => {
    const r = leads(server.dataDir).filter((l) => l.name === "Двойной Клик");
    return r.length && r;
  });
  assert.equal(rows.length, 1);
  assert.equal(posts.length, 1, "one POST for a double click");
  await context.close();
});

test("on a slow network (400 ms, 50 KB/s) the page waits and stores one lead", async () => {
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 400,
    downloadThroughput: 50 * 1024,
    uploadThroughput: 50 * 1024,
  });
  await page.goto(`${server.url}/expresscourse`);
  await fill(page, { name: "Медленная Сеть", phone: "+77015550011", email: "slow@mail.kz", method: "robokassa" });
  const submit = submitButton(page);
  await submit.tap();
  await submit.tap({ force: true }); // an impatient second tap on the busy button
  assert.equal(await page.locator('[role="status"]').innerText(), "Отправляем…");
  await page.locator("#done").waitFor({ state: "visible", timeout: 20000 });
  const rows = leads(server.dataDir).filter((l) => l.name === "Медленная Сеть");
  assert.equal(rows.length, 1);
  assert.equal(rows[0].payment_method, "robokassa");
  await context.close();
});
