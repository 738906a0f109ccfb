// ProfTest: one question per screen, then the contact form; the result is shown once the lead
// is accepted. Questions, options and results are in the HTML (rendered from content.json).
import { bindForm, pending, texts } from "./lead-client.js";

const form = document.getElementById("proftest");
const intro = document.getElementById("intro");
const result = document.getElementById("result");
const steps = Array.from(form.querySelectorAll("[data-step]"));
const questions = steps.filter((s) => s.dataset.step !== "contact");
const contact = steps.find((s) => s.dataset.step === "contact");
const t = texts();

/** The campaign slug of /integrator/proftest/<slug>, when it is one the API accepts. */
function slug() {
  const m = location.pathname.match(/\/proftest\/([^/?#]+)/i);
  const s = m ? decodeURIComponent(m[1]).toLowerCase() : "";
  return /^[a-z0-9_-]{1,64}$/.test(s) ? s : undefined;
}

function show(step) {
  intro.hidden = true;
  result.hidden = true;
  form.hidden = false;
  for (const s of steps) s.hidden = s !== step;
  const target = step.querySelector("legend, h2");
  if (target) target.focus();
  step.scrollIntoView({ block: "start" });
}

function answers() {
  return questions.map((step, i) => {
    const checked = step.querySelector("input:checked");
    return {
      q: i + 1,
      question: step.querySelector(".question").textContent,
      option: checked ? Number(checked.value) : null,
      answer: checked ? checked.closest("label").textContent.trim() : null,
      direction: checked ? checked.dataset.direction : null,
    };
  });
}

/** The direction with the most answers; a tie goes to the one listed first in content.json. */
function outcome(list) {
  const order = Array.from(result.querySelectorAll("[data-result]"), (el) => el.dataset.result);
  const scores = Object.fromEntries(order.map((k) => [k, 0]));
  for (const a of list) if (a.direction in scores) scores[a.direction] += 1;
  const key = order.reduce((best, k) => (scores[k] > scores[best] ? k : best), order[0]);
  const el = result.querySelector(`[data-result="${key}"]`);
  return { key, title: el ? el.dataset.title : key, scores };
}

function showResult(key) {
  form.hidden = true;
  intro.hidden = true;
  for (const el of result.querySelectorAll("[data-result]")) el.hidden = el.dataset.result !== key;
  result.hidden = false;
  const h = result.querySelector("h2");
  h.focus();
  h.scrollIntoView({ block: "start" });
}

for (const [i, step] of questions.entries()) {
  const error = step.querySelector(".field-error");
  step.querySelector("[data-next]").addEventListener("click", () => {
    if (!step.querySelector("input:checked")) {
      error.textContent = t.errors.answer;
      error.hidden = false;
      for (const r of step.querySelectorAll("input")) r.setAttribute("aria-invalid", "true");
      step.querySelector("input").focus();
      return;
    }
    show(questions[i + 1] || contact);
  });
  const back = step.querySelector("[data-back]");
  if (back) back.addEventListener("click", () => show(questions[i - 1]));
  step.addEventListener("change", () => {
    error.hidden = true;
    for (const r of step.querySelectorAll("input")) r.removeAttribute("aria-invalid");
  });
}

intro.querySelector("[data-start]").addEventListener("click", () => show(questions[0]));
result.querySelector("[data-retake]").addEventListener("click", () => {
  for (const r of form.querySelectorAll('input[type="radio"]')) r.checked = false;
  show(questions[0]);
});

const lead = bindForm(form, {
  extra() {
    const list = answers();
    const o = outcome(list);
    return {
      fields: { slug: slug() },
      metadata: { answers: list, result: o.title, resultKey: o.key, scores: o.scores },
    };
  },
  onSent(r) {
    const m = r.entry.body.metadata || {};
    showResult(m.resultKey);
  },
});

// A submission an earlier visit left unsent (closed tab, no network): send it and show its result.
const left = pending(form.dataset.endpoint);
if (left) {
  for (const k of ["name", "phone", "email"]) {
    const el = form.elements.namedItem(k);
    if (el && typeof left.body[k] === "string") el.value = left.body[k];
  }
  show(contact);
  lead.resume();
}
