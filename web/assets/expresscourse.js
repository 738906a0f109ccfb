// ExpressCourse checkout: the form, then what happens next and, when the server has one for the
// chosen method, the payment link.
import { bindForm, pending } from "./lead-client.js";

const form = document.getElementById("checkout");
const done = document.getElementById("done");

/** The campaign slug of /expresscourse/<slug>, when it is one the API accepts. */
function slug() {
  const m = location.pathname.match(/\/expresscourse\/([^/?#]+)/i);
  const s = m ? decodeURIComponent(m[1]).toLowerCase() : "";
  return /^[a-z0-9_-]{1,64}$/.test(s) ? s : undefined;
}

const lead = bindForm(form, {
  extra: () => ({ fields: { slug: slug() } }),
  onSent(r) {
    form.hidden = true;
    done.hidden = false;
    const link = r.body && r.body.paymentLink;
    const pay = done.querySelector("[data-pay]");
    if (typeof link === "string" && /^https?:\/\//i.test(link)) {
      pay.querySelector("a").href = link;
      pay.hidden = false;
    }
    const h = done.querySelector("h2");
    h.focus();
    h.scrollIntoView({ block: "start" });
  },
});

const left = pending(form.dataset.endpoint);
if (left) {
  for (const k of ["name", "phone", "email"]) {
    const el = form.elements.namedItem(k);
    if (el && typeof left.body[k] === "string") el.value = left.body[k];
  }
  for (const r of form.querySelectorAll('input[name="paymentMethod"]')) {
    r.checked = r.value === left.body.paymentMethod;
  }
  lead.resume();
}
