// The operators' HTML report (GET /admin/report behind LANDING_ADMIN_TOKEN) in a real browser:
// it renders self-contained, reads as a table, and the screenshot is in web/test-artifacts/.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DESKTOP, PHONE, guard, launch, screenshot, startServer, waitFor, query } from "./helpers.js";

const TOKEN = "admin-report-token-0123456789";
let browser;
let server;
before(async () => {
  browser = await launch();
  server = await startServer({ env: { LANDING_ADMIN_TOKEN: TOKEN } });
  // A morning's mix: three campaigns, both forms, a bot in the honeypot.
  const leads = [
    ["proftest", { slug: "kenesary" }], ["proftest", { slug: "kenesary" }], ["proftest", { slug: "kenesary" }],
    ["proftest", { slug: "arystan" }], ["proftest", { slug: "arystan" }],
    ["submit", { paymentMethod: "kaspi" }], ["submit", { paymentMethod: "halyk" }],
    ["proftest", { slug: "arystan", website: "http://spam.example" }],
  ];
  let i = 0;
  for (const [form, extra] of leads) {
    i += 1;
    const res = await fetch(`${server.url}/api/landing/${form}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: `Лид ${i}`, phone: `+7701333${String(i).padStart(4, "0")}`, email: `lead${i}@mail.kz`, ...extra }),
    });
    assert.equal(res.status, 201);
  }
  await waitFor(() => query(server.dataDir, "SELECT COUNT(*) AS n FROM scheduled_notifications WHERE status IN ('pending','sending')")[0].n === 0, { what: "follow-ups sent" });
});
after(async () => {
  await server?.stop();
  await browser?.close();
});

test("the report page needs the token, loads nothing from elsewhere, and reads as a chart and a table", async () => {
  const anonymous = await fetch(`${server.url}/admin/report`);
  assert.equal(anonymous.status, 401);

  const context = await browser.newContext({ ...DESKTOP, extraHTTPHeaders: { Authorization: `Bearer ${TOKEN}` } });
  const page = await context.newPage();
  const g = guard(page);
  const res = await page.goto(`${server.url}/admin/report?since=7d`);
  assert.equal(res.status(), 200);
  await page.getByRole("heading", { name: "Лиды по кампаниям" }).waitFor();
  const chart = page.getByRole("img", { name: /Лиды по дням и кампаниям: всего 8/ });
  assert.equal(await chart.count(), 1, "the chart has an accessible name");
  assert.equal(await page.locator("svg rect").count(), 3, "one bar segment per campaign today");
  const rows = page.locator("tbody tr");
  assert.equal(await rows.count(), 3);
  const kenesary = page.getByRole("row", { name: /proftest_kenesary/ });
  assert.match(await kenesary.innerText(), /^proftest_kenesary\s+3\s+3\b/);
  const arystan = page.getByRole("row", { name: /proftest_arystan/ });
  assert.match(await arystan.innerText(), /\b1\b/, "the bot is counted as quarantined");
  assert.deepEqual(g.foreign, [], "nothing from elsewhere");
  assert.deepEqual(g.errors, [], "no CSP or script error");
  await screenshot(page, "admin-report-1280");

  const phone = await browser.newContext({ ...PHONE, extraHTTPHeaders: { Authorization: `Bearer ${TOKEN}` } });
  const small = await phone.newPage();
  await small.goto(`${server.url}/admin/report`);
  await small.getByRole("heading", { name: "Лиды по кампаниям" }).waitFor();
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page itself does not scroll sideways on a phone (${overflow}px)`);
  await screenshot(small, "admin-report-360");
  await context.close();
  await phone.close();
});
