// Drive Agent Chat UI in headless Chromium: send a request, accept the plan review, wait
// for the answer. Prints the page's text as JSON; tests/test_chat_ui.py checks it.
//
// node drive_chat.mjs URL REQUEST OUT_DIR   (PLAYWRIGHT_DIR: where playwright-core is,
// CHROMIUM: the browser, default /usr/bin/chromium)
import { createRequire } from "node:module";
import path from "node:path";

const [url, request, outDir] = process.argv.slice(2);
const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR, "package.json"));
const { chromium } = require("playwright-core");
const TIMEOUT_MS = 60_000;
const steps = {};
const started = Date.now();
const step = (name) => (steps[name] = (Date.now() - started) / 1000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"], // root in a container: Chromium's sandbox needs user namespaces
});
const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
page.setDefaultTimeout(TIMEOUT_MS);
const errors = [];
page.on("pageerror", (err) => errors.push(String(err)));
// Tests never leave loopback: anything else the page asks for is refused, and reported.
const blocked = [];
await page.route("**/*", (route) => {
  const { hostname } = new URL(route.request().url());
  if (["127.0.0.1", "localhost", "[::1]"].includes(hostname)) return route.continue();
  blocked.push(route.request().url());
  return route.abort();
});
try {
  await page.goto(url);
  const input = page.getByPlaceholder("Type your message...");
  await input.fill(request);
  await page.getByRole("button", { name: "Send", exact: true }).click();
  step("sent");

  // The plan-review interrupt, rendered by the UI's own inbox view from our schema:
  // "Accept" in the HumanInterrupt generation of the UI, "Approve" in the HITLRequest one.
  const accept = page.getByRole("button", { name: /^(Accept|Approve)$/ });
  await accept.waitFor();
  step("plan_review_shown");
  await page.screenshot({ path: path.join(outDir, "plan-review.png"), fullPage: true });
  const review = await page.locator("body").innerText();
  await accept.click();
  step("accepted");

  // The answer streams in as the last AI message; the run is over when Send is back.
  await page.getByText(/\[[a-z0-9-]+#p\d+\]/).first().waitFor();
  step("answer_shown");
  await page.getByRole("button", { name: "Send", exact: true }).waitFor();
  step("run_finished");
  await page.screenshot({ path: path.join(outDir, "answer.png"), fullPage: true });
  const text = await page.locator("body").innerText();
  console.log(JSON.stringify({ review, text, steps, errors, blocked, url: page.url() }));
} catch (err) {
  await page.screenshot({ path: path.join(outDir, "failure.png"), fullPage: true });
  console.error(String(err), "\npage errors:", errors.join("\n"));
  console.error("page text:", (await page.locator("body").innerText()).slice(-3000));
  process.exitCode = 1;
} finally {
  await browser.close();
}
