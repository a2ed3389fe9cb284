// Conveyor dashboard: live parts, confirmations, select-all, either-or form fields. Plain
// JavaScript, no build.
//
// A page names its event stream in <body data-live> (the API's server-sent events route,
// behind the dashboard session) and marks the regions that change with data-live-part.
// An event refetches the page and swaps those regions in place: no reload, and the
// server renders every figure, so there is one template per view.
"use strict";

const body = document.body;
const parts = () => document.querySelectorAll("[data-live-part][id]");
let pending = null;
let busy = false;

function held() {
  // Keep a region still while the user is using it (a selection, a field being typed in).
  const hold = document.querySelector("[data-live-hold]");
  if (hold && hold.querySelector("input:checked")) return true;
  const active = document.activeElement;
  return Boolean(active && active.closest("[data-live-part]") && active.matches("input, select, textarea"));
}

async function refresh() {
  pending = null;
  if (busy || held()) return;
  busy = true;
  try {
    const response = await fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
    if (!response.ok || response.redirected) return;  // logged out, or gone: keep what is shown
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const part of parts()) {
      // Only what changed: a control that did not change is never swapped under a click.
      const next = fresh.getElementById(part.id);
      if (next && next.innerHTML !== part.innerHTML) {
        keepTyped(part, next);
        part.replaceWith(next);
      }
    }
    // Counted on the page, for whoever waits for it to be live (the browser tests).
    body.dataset.refreshes = String(Number(body.dataset.refreshes || 0) + 1);
    document.dispatchEvent(new CustomEvent("conveyor:refreshed"));
  } catch (error) {
    // The server went away for a moment: the next event or tick tries again.
  } finally {
    busy = false;
  }
}

// A form the user has filled in (or one the server gave back refused, data-typed) keeps
// what it holds when its region is swapped for a fresh one.
function keepTyped(part, next) {
  for (const form of part.querySelectorAll("form[id]")) {
    const fields = [...form.elements].filter((field) => field.name && field.type !== "hidden");
    if (!form.hasAttribute("data-typed") && fields.every((f) => f.value === f.defaultValue)) continue;
    const fresh = [...next.querySelectorAll("form[id]")].find((f) => f.id === form.id);
    if (!fresh) continue;
    for (const field of fields) {
      const twin = fresh.elements.namedItem(field.name);
      if (twin) twin.value = field.value;
    }
    fresh.setAttribute("data-typed", "");
  }
}

function soon(delay) {
  if (pending === null) pending = setTimeout(refresh, delay);
}

if (body.dataset.live) {
  const stream = new EventSource(body.dataset.live);
  // The feed's event names (Backend.events): jobs, queues paused/resumed/purged, workers
  // come or gone, so the Queues and Workers pages change the moment they do.
  const kinds = ["job.state", "job.progress", "queue.paused", "queue.resumed", "queue.purged",
    "worker.online", "worker.offline"];
  const onEvent = () => soon(250);
  stream.onmessage = onEvent;
  // The stream starts from now: whatever changed between this page's rendering and the
  // stream's (re)connection is fetched once, so no change falls in the gap.
  stream.onopen = onEvent;
  for (const kind of kinds) stream.addEventListener(kind, onEvent);
  addEventListener("pagehide", () => stream.close());
}
const tick = Number(body.dataset.tick || 0);
if (tick > 0) setInterval(() => soon(0), tick * 1000);

document.addEventListener("submit", (event) => {
  const form = event.target.closest("[data-confirm]") || event.submitter?.closest("[data-confirm]");
  const message = event.submitter?.dataset.confirm || form?.dataset.confirm;
  if (event.target.id === "bulk" && !event.target.querySelector("input[name=ids]:checked")) {
    event.preventDefault(); // nothing ticked: nothing to ask about, nothing to send
    alert("Tick the jobs first.");
    return;
  }
  if (message && !confirm(message)) event.preventDefault();
});

// A form whose fields are alternatives (data-one-of="cron every"): typing in one empties
// the others, so a schedule's pre-filled interval gives way to a cron being typed.
document.addEventListener("input", (event) => {
  const form = event.target.form;
  if (!form || !form.dataset.oneOf || !event.target.value) return;
  for (const name of form.dataset.oneOf.split(" ")) {
    const other = form.elements.namedItem(name);
    if (name !== event.target.name && other) other.value = "";
  }
});

document.addEventListener("change", (event) => {
  if (!event.target.matches("[data-select-all]")) return;
  for (const box of document.querySelectorAll("input[name=ids]")) box.checked = event.target.checked;
});

// Queue depth over time: the store keeps no history of depths, so the queues page
// samples the figures each refresh brings and draws them since the page opened.
const depths = new Map();
function sampleDepths() {
  const now = Date.now();
  for (const part of document.querySelectorAll("[data-depth]")) {
    const samples = depths.get(part.dataset.depth) || [];
    samples.push([now, Number(part.dataset.waiting), Number(part.dataset.running)]);
    while (samples.length > 2 && now - samples[0][0] > 15 * 60 * 1000) samples.shift();
    depths.set(part.dataset.depth, samples);
  }
  for (const svg of document.querySelectorAll("svg[data-spark]")) {
    const samples = depths.get(svg.dataset.spark) || [];
    if (samples.length < 2) continue;
    const start = samples[0][0], span = Math.max(now - start, 1);
    const peak = Math.max(1, ...samples.map((s) => s[1] + s[2]));
    const line = (pick) => samples.map((s) =>
      `${(300 * (s[0] - start) / span).toFixed(1)},${(60 - 58 * pick(s) / peak).toFixed(1)}`).join(" ");
    svg.innerHTML = `<polyline class="waiting" points="${line((s) => s[1])}"/>` +
      `<polyline class="running" points="${line((s) => s[2])}"/><title>peak ${peak}</title>`;
  }
}
if (document.querySelector("[data-depth]")) {
  sampleDepths();
  document.addEventListener("conveyor:refreshed", sampleDepths);
}
