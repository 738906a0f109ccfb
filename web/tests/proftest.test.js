// ProfTest on a phone, from the first question to the result, against a real landing-local.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DESKTOP, PHONE, answerQuiz, guard, launch, leads, outbox, screenshot, startServer, waitFor } from "./helpers.js";

let browser;
let server;
before(async () => {
  browser = await launch();
  server = await startServer();
});
after(async () => {
  await server?.stop();
  await browser?.close();
});

test("a phone visitor takes the test with a slug and UTM: one lead with answers, result and UTM, then SMS and email", async () => {
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  const g = guard(page);
  await page.goto(`${server.url}/integrator/proftest/kenesary?utm_source=instagram&utm_medium=cpc&utm_campaign=kenesary_dec&utm_content=reels_1&utm_term=%D0%BF%D1%80%D0%BE%D1%84%D1%82%D0%B5%D1%81%D1%82&gclid=gc-123`);
  await screenshot(page, "proftest-360-initial");
  await page.locator("[data-start]").tap();
  await screenshot(page, "proftest-360-question");
  // Mostly the first option (IT), so the result is known: it scores highest.
  const total = await answerQuiz(page, (i) => (i % 3 === 2 ? 1 : 0));
  assert.equal(total, 12);
  await page.getByLabel("Имя", { exact: true }).fill("Айгерим");
  await page.getByLabel("Телефон", { exact: true }).fill("8 777 123 45 67");
  await page.getByLabel("Email", { exact: true }).fill("aigerim@mail.kz");
  await page.getByRole("button", { name: "Узнать результат" }).tap();

  const result = page.locator("#result");
  await result.waitFor({ state: "visible" });
  await assert.doesNotReject(result.getByText("IT и программирование").waitFor());
  assert.match(await page.locator("#result [data-result='it']").innerText(), /Python/);
  await screenshot(page, "proftest-360-result");

  const rows = await waitFor(() => leads(server.dataDir).length === 1 && leads(server.dataDir), { what: "the lead row" });
  const [lead] = rows;
  assert.equal(lead.form, "proftest");
  assert.equal(lead.source_campaign, "proftest_kenesary");
  assert.equal(lead.name, "Айгерим");
  assert.equal(lead.phone, "+77771234567");
  assert.equal(lead.email, "aigerim@mail.kz");
  assert.deepEqual(
    [lead.utm_source, lead.utm_medium, lead.utm_campaign, lead.utm_content, lead.utm_term],
    ["instagram", "cpc", "kenesary_dec", "reels_1", "профтест"],
  );
  assert.match(lead.page_url, /\/integrator\/proftest\/kenesary\?utm_source=instagram/);
  const m = lead.metadata;
  assert.equal(m.answers.length, 12);
  assert.deepEqual(m.answers[0].q, 1);
  assert.equal(m.answers[0].direction, "it");
  assert.ok(m.answers.every((a) => typeof a.answer === "string" && a.answer.length > 0));
  assert.equal(m.resultKey, "it");
  assert.equal(m.result, "IT и программирование");
  assert.deepEqual(m.clickIds, { gclid: "gc-123" });

  // NOTIFY_DELAY=1s: the follow-ups arrive in the outbox, one of each.
  const sent = await waitFor(() => {
    const o = outbox(server.dataDir).filter((x) => x.leadId === lead.id);
    return o.length === 2 && o;
  }, { what: "SMS and email in the outbox" });
  assert.deepEqual(sent.map((x) => x.channel).sort(), ["email", "sms"]);
  assert.equal(sent.find((x) => x.channel === "sms").to, "+77771234567");
  assert.deepEqual(g.foreign, [], "no request leaves 127.0.0.1");
  assert.deepEqual(g.errors, []);

  // A second visit without UTM (the same browser) keeps the first touch.
  await page.goto(`${server.url}/integrator/proftest`);
  await page.locator("[data-start]").tap();
  await answerQuiz(page, () => 1);
  await page.getByLabel("Имя", { exact: true }).fill("Айгерим");
  await page.getByLabel("Телефон", { exact: true }).fill("+7 777 123 45 67");
  await page.getByRole("button", { name: "Узнать результат" }).tap();
  await page.locator("#result").waitFor({ state: "visible" });
  const second = await waitFor(() => leads(server.dataDir).length === 2 && leads(server.dataDir)[1], { what: "the second lead" });
  assert.equal(second.source_campaign, "proftest");
  assert.equal(second.utm_source, "instagram", "first touch kept");
  assert.equal(second.utm_campaign, "kenesary_dec");
  assert.equal(second.metadata.firstTouch.pageUrl.includes("utm_source=instagram"), true);
  assert.doesNotMatch(second.page_url, /utm_/);
  await context.close();
});

test("a wide screen shows the same page: screenshots at 1280 px", async () => {
  const context = await browser.newContext(DESKTOP);
  const page = await context.newPage();
  const g = guard(page);
  await page.goto(`${server.url}/integrator/proftest/arystan`);
  await screenshot(page, "proftest-1280-initial");
  await page.getByRole("button", { name: "Начать тест" }).click();
  await screenshot(page, "proftest-1280-question");
  await answerQuiz(page, () => 2, { touch: false });
  await page.getByLabel("Имя", { exact: true }).fill("Ерлан");
  await page.getByLabel("Email", { exact: true }).fill("erlan@mail.kz");
  await page.getByRole("button", { name: "Узнать результат" }).click();
  await page.locator("#result").waitFor({ state: "visible" });
  await screenshot(page, "proftest-1280-result");
  const lead = await waitFor(() => leads(server.dataDir).find((l) => l.source_campaign === "proftest_arystan"), { what: "the lead" });
  assert.equal(lead.email, "erlan@mail.kz");
  assert.equal(lead.phone, null);
  assert.deepEqual(g.foreign, []);
  await context.close();
});

test("the honeypot is out of reach of people and screen readers; a bot that fills it sees success and gets nothing sent", async () => {
  const bots = await startServer({ env: { HONEYPOT_FIELD: "company" } });
  try {
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    const g = guard(page);
    await page.goto(`${bots.url}/integrator/proftest`);
    await page.locator("[data-start]").tap();
    await answerQuiz(page, () => 0);
    // HONEYPOT_FIELD renames the trap on the page as well as in the check.
    const trap = page.locator('input[name="company"]');
    assert.equal(await trap.count(), 1);
    assert.equal(await page.locator('input[name="website"]').count(), 0);
    assert.equal(await trap.getAttribute("tabindex"), "-1");
    const snapshot = await page.locator("form").ariaSnapshot();
    assert.doesNotMatch(snapshot, /не заполняйте/i, "screen readers never meet the trap");
    const box = await trap.boundingBox();
    assert.ok(!box || box.x + box.width <= 0, "the trap is off screen");

    await page.getByLabel("Имя", { exact: true }).fill("Bot");
    await page.getByLabel("Телефон", { exact: true }).fill("+7 701 999 00 01");
    await page.getByLabel("Email", { exact: true }).fill("bot@mail.kz");
    await trap.evaluate((el) => { el.value = "http://casino.example"; });
    await page.getByRole("button", { name: "Узнать результат" }).tap();
    await page.locator("#result").waitFor({ state: "visible" });

    const [lead] = await waitFor(() => leads(bots.dataDir).length === 1 && leads(bots.dataDir), { what: "the bot's lead" });
    assert.equal(lead.crm_status, "quarantined", "stored, held back");
    assert.equal(lead.quarantine_reason, "honeypot");
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual(outbox(bots.dataDir), [], "no SMS, no email");
    assert.deepEqual(g.errors, []);
    await context.close();
  } finally {
    await bots.stop();
  }
});
