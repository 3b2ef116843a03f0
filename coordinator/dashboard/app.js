// drover's dashboard: polls /api/state every second and redraws workers,
// jobs (progress, rate, ETA) and the throughput chart; a job's failed tasks
// (with their stderr tails) come from /api/jobs/ID/failed. Text is set with
// textContent only: nothing from the server is parsed as HTML.
"use strict";

const POLL_MS = 1000;
const CHART_SECONDS = 300;
const samples = [];        // {t (s), done (tasks done over all jobs)}
const jobRates = new Map();  // job id -> {t, done, rate}
let selectedJob = null;    // the job whose failed tasks are shown
let userSelected = false;

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function duration(seconds) {
  if (!isFinite(seconds) || seconds < 0) return "";
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor(seconds / 60) % 60).padStart(2, "0")}m`;
}

function rate(perSecond) {
  if (!isFinite(perSecond) || perSecond <= 0) return "";
  return perSecond >= 100 ? `${Math.round(perSecond)}/s` : `${perSecond.toFixed(1)}/s`;
}

function renderJobs(jobs, now) {
  const body = document.querySelector("#jobs tbody");
  body.replaceChildren();
  for (const job of [...jobs].reverse()) {
    const row = body.insertRow();
    row.className = "job" + (job.jobId === selectedJob ? " selected" : "");
    row.id = `job-${job.jobId}`;
    row.addEventListener("click", () => { selectedJob = job.jobId; userSelected = true; refreshFailed(); });
    const last = jobRates.get(job.jobId);
    let perSecond = last ? last.rate : 0;
    if (last && now > last.t) {
      const fresh = (job.doneItems - last.done) / (now - last.t);
      perSecond = last.rate === 0 ? fresh : 0.7 * last.rate + 0.3 * fresh;
    }
    jobRates.set(job.jobId, { t: now, done: job.doneItems, rate: perSecond });
    const running = job.state === "running" || job.state === "queued";
    cell(row, job.jobId);
    cell(row, job.name);
    cell(row, job.runs, "muted");
    cell(row, job.state, `state-${job.state}`);
    const progress = cell(row, "");
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${job.totalItems ? (100 * job.doneItems) / job.totalItems : 0}%`;
    bar.append(fill);
    progress.append(bar, document.createTextNode(`${job.doneItems}/${job.totalItems}`));
    progress.className = "progress";
    cell(row, running ? rate(perSecond) : "", "num");
    cell(row, running && perSecond > 0 ? duration((job.totalItems - job.doneItems) / perSecond) : "", "num");
    cell(row, job.failedItems, "num");
  }
}

function renderWorkers(workers) {
  const body = document.querySelector("#workers tbody");
  body.replaceChildren();
  for (const w of workers) {
    const row = body.insertRow();
    row.id = `worker-${w.workerId}`;
    cell(row, w.workerId);
    cell(row, w.host);
    cell(row, w.slots, "num");
    cell(row, w.slotsBusy, "num");
    cell(row, w.chunksHeld, "num");
    cell(row, w.ioCallsInFlight, "num");
    cell(row, w.chunksDone, "num");
    cell(row, w.labels.join(", "), "muted");
    cell(row, w.draining ? "draining" : "ready");
  }
  if (workers.length === 0) cell(body.insertRow(), "no workers connected", "muted").colSpan = 9;
}

function renderChart(now) {
  while (samples.length > 0 && samples[0].t < now - CHART_SECONDS) samples.shift();
  const points = [];
  for (let i = 1; i < samples.length; ++i) {
    const dt = samples[i].t - samples[i - 1].t;
    if (dt > 0) points.push({ t: samples[i].t, v: Math.max(0, (samples[i].done - samples[i - 1].done) / dt) });
  }
  const top = Math.max(1, ...points.map((p) => p.v));
  document.getElementById("line").setAttribute("points", points
    .map((p) => `${(600 * (p.t - (now - CHART_SECONDS))) / CHART_SECONDS},${118 - (110 * p.v) / top}`).join(" "));
  const latest = points.length ? points[points.length - 1].v : 0;
  document.getElementById("rate").textContent = `now ${rate(latest) || "0/s"}, peak ${rate(top) || "0/s"}`;
}

async function refreshFailed() {
  const section = document.getElementById("failed");
  if (selectedJob === null) { section.hidden = true; return; }
  let reply;
  try {
    const response = await fetch(`api/jobs/${selectedJob}/failed`, { cache: "no-store" });
    if (!response.ok) { section.hidden = true; return; }
    reply = await response.json();
  } catch (error) {
    return;  // the status line says the coordinator is unreachable
  }
  document.getElementById("failed-job").textContent = selectedJob;
  const list = document.getElementById("failed-list");
  list.replaceChildren();
  for (const task of reply.tasks) {
    const title = document.createElement("div");
    title.className = "failed-task";
    title.textContent = `task ${task.index + 1} (${task.item || "?"}) on ${task.worker || "?"}: ${task.reason}`;
    list.append(title);
    if (task.stderrTail) {
      const pre = document.createElement("pre");
      pre.textContent = task.stderrTail;
      list.append(pre);
    }
  }
  if (reply.tasks.length === 0) list.textContent = "no failed task (or its results were streamed, not kept)";
  section.hidden = false;
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("api/state", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const state = await response.json();
    const now = state.nowUnixMs / 1000;
    samples.push({ t: now, done: state.jobs.reduce((sum, job) => sum + job.doneItems, 0) });
    if (!userSelected) {
      const failing = state.jobs.filter((job) => job.failedItems > 0);
      selectedJob = failing.length ? failing[failing.length - 1].jobId : null;
    }
    renderJobs(state.jobs, now);
    renderWorkers(state.workers);
    renderChart(now);
    status.textContent = `${state.workers.length} worker(s), ${state.jobs.length} job(s) · updated ${
      new Date(state.nowUnixMs).toLocaleTimeString()}`;
    status.className = "muted";
  } catch (error) {
    status.textContent = `cannot reach the coordinator (${error.message}); retrying`;
    status.className = "down";
  }
}

let ticks = 0;
async function tick() {
  await poll();
  if (ticks++ % 3 === 0) await refreshFailed();
  setTimeout(tick, POLL_MS);
}
tick();
