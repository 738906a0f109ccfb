// The emails' one-click unsubscribe page (GET /api/landing/unsubscribe?token=…) in a real browser,
// as the person who follows the footer link on a phone sees it: one button, nothing loaded from
// elsewhere, the outcome announced; the address ends on the suppression list only after the press.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DESKTOP, PHONE, guard, launch, outbox, query, screenshot, startServer, waitFor } from "./helpers.js";

let browser;
let server;
let link;
before(async () => {
  browser = await launch();
  server = await startServer();
  const res = await fetch(`${server.url}/api/landing/proftest`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "Айгерим", phone: "+77013339901", email: "unsub.page@mail.kz" }),
  });
  assert.equal(res.status, 201);
  const email = await waitFor(() => outbox(server.dataDir).find((l) => l.channel === "email"), { what: "the email" });
  link = email.headers["List-Unsubscribe"].replace(/^<|>$/g, "");
});
after(async () => {
  await server?.stop();
  await browser?.close();
});

const listed = () => query(server.dataDir, "SELECT COUNT(*) AS n FROM suppressed_addresses")[0].n;

test("the footer link opens a one-button page on a phone; the press unsubscribes, the visit alone does not", async () => {
  const phone = await browser.newContext(PHONE);
  const page = await phone.newPage();
  const g = guard(page);
  const res = await page.goto(link);
  assert.equal(res.status(), 200);
  await page.getByRole("heading", { name: "Отписаться от писем школы?" }).waitFor();
  const button = page.getByRole("button", { name: "Отписаться" });
  assert.equal(await button.count(), 1);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page does not scroll sideways (${overflow}px)`);
  const box = await button.boundingBox();
  assert.ok(box.height >= 44, `the button is a finger's size (${box.height}px)`);
  assert.equal(listed(), 0, "opening the link changes nothing");
  await screenshot(page, "unsubscribe-360");

  await button.click();
  await page.getByRole("status").filter({ hasText: "Вы отписаны" }).waitFor();
  assert.equal(listed(), 1);
  assert.deepEqual(g.foreign, [], "nothing from elsewhere");
  assert.deepEqual(g.errors, [], "no CSP or script error");
  await screenshot(page, "unsubscribed-360");
  await phone.close();

  const desk = await browser.newContext(DESKTOP);
  const again = await desk.newPage();
  await again.goto(link);
  await again.getByRole("button", { name: "Отписаться" }).click();
  await again.getByRole("status").filter({ hasText: "Вы уже отписаны" }).waitFor();
  await screenshot(again, "unsubscribed-1280");
  assert.equal(listed(), 1, "a second press lists nothing new");
  await desk.close();
});

test("a cut link says so and offers no button", async () => {
  const page = await (await browser.newContext(PHONE)).newPage();
  const res = await page.goto(link.slice(0, -4));
  assert.equal(res.status(), 400);
  await page.getByRole("heading", { name: "Ссылка не работает" }).waitFor();
  assert.equal(await page.getByRole("button").count(), 0);
});
