// Integration: drover-coordinator --dashboard in a real headless browser
// (Debian's chromium driven by puppeteer-core, pinned in package-lock.json).
// Starts a coordinator with a token and a worker, opens the page with the
// token as the password and checks: no console errors, a running job's
// progress changes, a worker appears and disappears, a failed task's stderr
// tail is shown, a request without the token is refused, and no request
// leaves the coordinator (assets are in the binary). Prints the page's weight
// and time to first paint. Exit 77 (skipped) without chromium.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const BIN = process.env.DROVER_BIN_DIR;
const CHROMIUM = "/usr/bin/chromium";
if (!existsSync(CHROMIUM)) {
  console.log("SKIP: chromium is not installed (scripts/install-deps)");
  process.exit(77);
}
const TOKEN = "dashboard-test-token-42";
const work = mkdtempSync(join(tmpdir(), "drover-dashboard-test-"));
const processes = [];
const root = process.getuid() === 0 ? ["--allow-root"] : [];
let browser;

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function start(program, args) {
  const child = spawn(`${BIN}/${program}`, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.log = "";
  child.stdout.on("data", (d) => (child.log += d));
  child.stderr.on("data", (d) => (child.log += d));
  processes.push(child);
  return child;
}

function drover(...args) {
  const r = spawnSync(`${BIN}/drover`, ["--coordinator", clientAddress, ...args],
                      { env: { ...process.env, DROVER_TOKEN: TOKEN }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`drover ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

function check(condition, what) {
  if (!condition) throw new Error(`FAILED: ${what}`);
  console.log(`ok: ${what}`);
}

let clientAddress;
try {
  const tokenFile = join(work, "token");
  writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
  const [clientPort, workerPort, dashboardPort] = [await freePort(), await freePort(), await freePort()];
  clientAddress = `127.0.0.1:${clientPort}`;
  const url = `http://127.0.0.1:${dashboardPort}/`;
  const coordinator = start("drover-coordinator", ["--listen-clients", clientAddress, "--listen-workers",
    `tcp://127.0.0.1:${workerPort}`, "--token-file", tokenFile, "--dashboard", `127.0.0.1:${dashboardPort}`]);
  start("drover-worker", ["--coordinator", `tcp://127.0.0.1:${workerPort}`, "--slots", "2", "--name", "first",
    ...root]);

  // Without the token: refused.
  let refused = null;
  for (let i = 0; i < 100 && refused === null; ++i) {
    try { refused = (await fetch(url)).status; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  check(refused === 401, `a request without the token is refused (${refused}; ${coordinator.log.slice(-300)})`);

  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  const page = await browser.newPage();
  const errors = [];
  const foreign = [];
  let bytes = 0;
  page.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("request", (request) => { if (!request.url().startsWith(url)) foreign.push(request.url()); });
  page.on("response", async (response) => {
    if (!response.url().includes("/api/")) bytes += (await response.buffer().catch(() => Buffer.alloc(0))).length;
  });
  await page.authenticate({ username: "me", password: TOKEN });
  await page.goto(url, { waitUntil: "load" });
  // The first paint may come after the load event: wait for its entry (buffered) up to 5 s.
  const timing = await page.evaluate(() => new Promise((resolve) => {
    const load = performance.getEntriesByType("navigation")[0]?.loadEventEnd;
    const done = (paint) => resolve({ paint, load });
    new PerformanceObserver((list) => {
      const entry = list.getEntries().find((e) => e.name === "first-contentful-paint");
      if (entry) done(entry.startTime);
    }).observe({ type: "paint", buffered: true });
    setTimeout(() => done(undefined), 5000);
  }));

  const text = (selector) => page.$eval(selector, (e) => e.textContent).catch(() => null);
  await page.waitForSelector("#worker-first", { timeout: 30000 });
  check(true, "the worker is listed");

  // A job of sleeps: its progress changes while the page is open.
  const job = drover("submit", "--chunk", "1", "--range", "0:12", "--", "sh", "-c", "sleep 0.5");
  await page.waitForSelector(`#job-${job} .progress`, { timeout: 30000 });
  const before = await text(`#job-${job} .progress`);
  await page.waitForFunction((id, first) => {
    const cell = document.querySelector(`#job-${id} .progress`);
    return cell && cell.textContent !== first;
  }, { timeout: 30000 }, job, before);
  check(true, `job ${job}'s progress changes (${before} -> ${await text(`#job-${job} .progress`)})`);

  // A second worker appears, then leaves.
  const second = start("drover-worker", ["--coordinator", `tcp://127.0.0.1:${workerPort}`, "--slots", "1",
    "--name", "second", ...root]);
  await page.waitForSelector("#worker-second", { timeout: 30000 });
  check(true, "a worker that joins appears");
  second.kill("SIGTERM");
  await page.waitForSelector("#worker-second", { hidden: true, timeout: 30000 });
  check(true, "a worker that leaves disappears");

  // A failed task with its stderr tail.
  drover("submit", ":::", "x", "--", "sh", "-c", "echo 'first line' >&2; echo 'the reason: disk full' >&2; exit 3");
  await page.waitForFunction(() => document.querySelector("#failed-list pre")?.textContent.includes("disk full"),
                             { timeout: 30000 });
  check((await text("#failed-list")).includes("exit status 3"), "a failed task shows its reason and stderr tail");
  await page.waitForFunction((id) => document.querySelector(`#job-${id}`)?.textContent.includes("succeeded"),
                             { timeout: 60000 }, job);
  check(errors.length === 0, `no console errors (${errors.join("; ")})`);
  check(foreign.length === 0, `nothing is fetched from elsewhere (${foreign.join(", ")})`);
  console.log(`page weight: ${bytes} bytes (page and script); first contentful paint: ${
    timing.paint === undefined ? "not reported" : `${timing.paint.toFixed(0)} ms`}; load event: ${
    timing.load?.toFixed(0)} ms`);
  if (process.env.DROVER_DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DROVER_DASHBOARD_SCREENSHOT });
  console.log("PASS");
} catch (error) {
  console.log(String(error.stack || error));
  for (const p of processes) console.log(`--- ${p.spawnargs.slice(0, 2).join(" ")}\n${p.log.slice(-2000)}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  for (const p of processes) p.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
}
