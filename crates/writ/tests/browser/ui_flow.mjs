// writ's web UI in a real Chromium (Debian's, driven by playwright-core): the core
// flow from sign-in to a verified revocation with two people in two browser
// contexts, a denial, self-approval refused, and the core flow again with JavaScript
// off. axe-core checks every page visited; no serious or critical violation passes.
// Screenshots (desktop and phone widths) go to WRIT_SCREENSHOTS.
//
// Run by crates/writ/tests/browser_ui.rs, which starts writ and passes:
// WRIT_URL, WRIT_TOKEN_ALICE, WRIT_TOKEN_DAVE, WRIT_TOKEN_BOB, WRIT_CHROMIUM,
// WRIT_SCREENSHOTS.

import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("WRIT_URL");
const SHOTS = env("WRIT_SCREENSHOTS");
mkdirSync(SHOTS, { recursive: true });

const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };
const checked = [];
/// Answers a step expects to be refused (Chromium logs every 4xx as an error).
const expectedRefusals = new Set();
const problems = [];

function fail(message) {
  throw new Error(message);
}

/// axe-core on the page as it is now: serious and critical violations fail. (axe is
/// a script: pages seen with JavaScript off are the same pages, checked with it on.)
async function accessible(page, name) {
  if (page.jsOff) return;
  await page.evaluate(AXE);
  const results = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"] }),
  );
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  checked.push(`${name}: ${results.violations.length} violation(s), ${bad.length} serious or critical`);
  for (const v of bad) {
    problems.push(`${name}: ${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join("; ")}`);
  }
}

async function shoot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/// A person's browser: its own context (cookies), watched for script errors.
async function person(browser, viewport, javaScriptEnabled = true) {
  const context = await browser.newContext({ viewport, javaScriptEnabled });
  const page = await context.newPage();
  page.jsOff = !javaScriptEnabled;
  page.setDefaultTimeout(20000);
  page.on("pageerror", (error) => problems.push(`script error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    if (expectedRefusals.has(page.url()) && message.text().startsWith("Failed to load resource")) return;
    problems.push(`console error on ${page.url()}: ${message.text()}`);
  });
  return { context, page };
}

async function signIn(page, token, name) {
  step = `signing in as ${name}`;
  await page.goto(`${BASE}/ui`);
  if (!page.url().includes("/ui/signin")) fail(`not sent to sign in: ${page.url()}`);
  await accessible(page, `sign-in (${name})`);
  await page.getByLabel("Your writ token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/ui`);
  await page.getByText(`Signed in as ${name}`).waitFor();
}

/// Reloads `url` until `text` is on the page.
async function until(page, url, text, seconds = 15) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    await page.goto(url);
    if ((await page.content()).includes(text)) return;
    if (Date.now() > deadline) fail(`${url} never showed ${JSON.stringify(text)}`);
    await page.waitForTimeout(200);
  }
}

async function requestAccess(page, { entitlement, duration, why, preview }) {
  step = `requesting ${entitlement}`;
  await page.goto(`${BASE}/ui/request`);
  await page.getByLabel("Entitlement").fill(entitlement);
  await page.getByLabel("For how long").fill(duration);
  await page.getByLabel("Why").fill(why);
  if (preview) {
    await page.locator("#preview").getByText(preview).waitFor({ timeout: 10000 });
  }
}

// Whatever hangs, the run ends and says where it was.
let step = "starting";
setTimeout(() => {
  console.error(`timed out at: ${step}\n${checked.join("\n")}\n${problems.join("\n")}`);
  process.exit(2);
}, 240000).unref();

const browser = await chromium.launch({
  executablePath: env("WRIT_CHROMIUM"),
  args: ["--no-sandbox"],
});
try {
  // Alice asks; the decision is previewed as she types (the script's fetch).
  const alice = await person(browser, DESKTOP);
  await signIn(alice.page, env("WRIT_TOKEN_ALICE"), "alice");
  await accessible(alice.page, "my access (empty)");
  await requestAccess(alice.page, {
    entitlement: "t/admin",
    duration: "4h",
    why: "Roll out the fix for INC-7 on the admin console",
    preview: "Needs 1 approval from",
  });
  if (!(await alice.page.locator("#preview").textContent()).includes("capped at 2h")) {
    fail("the preview does not say the request is capped");
  }
  await accessible(alice.page, "request access (with preview)");
  await shoot(alice.page, "request-desktop");
  await alice.page.getByRole("button", { name: "Submit request" }).click();
  await alice.page.waitForURL(/\/ui\/requests\//);
  const requestUrl = alice.page.url();
  await alice.page.getByText("You asked for this, so you cannot approve it").waitFor();
  await accessible(alice.page, "request (pending)");

  // Self-approval, forced through a hand-made form: refused, and said so plainly.
  expectedRefusals.add(`${requestUrl}/decide`);
  await alice.page.evaluate(() => {
    const form = document.createElement("form");
    form.method = "post";
    form.action = `${location.pathname}/decide`;
    for (const [name, value] of [
      ["csrf_token", document.querySelector("input[name=csrf_token]").value],
      ["decision", "approve"],
      ["comment", "approving my own"],
    ]) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
  });
  await alice.page.getByText("You cannot approve this request").waitFor();
  await accessible(alice.page, "self-approval refused");
  await shoot(alice.page, "self-approval-refused");

  // Dave approves on his phone, in a browser of his own.
  const dave = await person(browser, PHONE);
  await signIn(dave.page, env("WRIT_TOKEN_DAVE"), "dave");
  await dave.page.goto(`${BASE}/ui/approvals`);
  await dave.page.getByText("Roll out the fix for INC-7").waitFor();
  await accessible(dave.page, "approvals inbox (phone)");
  await shoot(dave.page, "approvals-phone");
  const card = dave.page.locator("article", { hasText: "Roll out the fix for INC-7" });
  await card.getByLabel("Comment").fill("Go ahead, watch the error rate");
  await card.getByRole("button", { name: "Approve" }).click();
  await dave.page.waitForURL(/\/ui\/requests\//);
  await dave.page.getByText("approved", { exact: true }).first().waitFor();

  // Alice sees the lease with a live countdown.
  await until(alice.page, `${BASE}/ui`, "data-countdown");
  step = "the countdown";
  const countdown = alice.page.locator("time[data-countdown]").first();
  const before = await countdown.textContent();
  await alice.page.waitForTimeout(2100);
  const after = await countdown.textContent();
  if (before === after) fail(`the countdown does not tick: ${before} → ${after}`);
  await accessible(alice.page, "my access (active grant)");
  await shoot(alice.page, "my-access-desktop");
  await alice.page.setViewportSize(PHONE);
  await shoot(alice.page, "my-access-phone");
  await alice.page.setViewportSize(DESKTOP);

  // The grant's page; revoke it early; the timeline shows the verification.
  await alice.page.locator("a[href^='/ui/grants/']").first().click();
  await alice.page.waitForURL(/\/ui\/grants\//);
  const grantUrl = alice.page.url();
  await accessible(alice.page, "grant (active)");
  await alice.page.getByLabel("End this access now").fill("fix rolled out");
  await alice.page.getByRole("button", { name: "Revoke now" }).click();
  await until(alice.page, grantUrl, "Verified gone from the target");
  await accessible(alice.page, "grant timeline (revoked)");
  await shoot(alice.page, "grant-timeline-desktop");
  await alice.page.setViewportSize(PHONE);
  await shoot(alice.page, "grant-timeline-phone");
  await alice.page.setViewportSize(DESKTOP);

  // A denied request shows its reason.
  await requestAccess(alice.page, {
    entitlement: "t/root",
    duration: "30m",
    why: "Look at the root console",
    preview: "Denied: critical access needs a ticket",
  });
  await alice.page.getByRole("button", { name: "Submit request" }).click();
  await alice.page.waitForURL(/\/ui\/requests\//);
  await alice.page.getByText("critical access needs a ticket").first().waitFor();
  await accessible(alice.page, "request (denied)");
  await shoot(alice.page, "request-denied");
  await alice.page.goto(requestUrl);

  step = "the core flow with JavaScript off";
  // The core flow with JavaScript off: sign in, request with the Preview button,
  // approve, see the grant, revoke, the timeline.
  const bob = await person(browser, PHONE, false);
  await signIn(bob.page, env("WRIT_TOKEN_BOB"), "bob");
  await requestAccess(bob.page, {
    entitlement: "t/admin",
    duration: "1h",
    why: "Rotate the admin console's certificate",
  });
  await bob.page.getByRole("button", { name: "Preview the decision" }).click();
  await bob.page.locator("#preview").getByText("Needs 1 approval from").waitFor();
  await accessible(bob.page, "request preview (no JavaScript)");
  await shoot(bob.page, "request-preview-no-js-phone");
  await bob.page.getByRole("button", { name: "Submit request" }).click();
  await bob.page.waitForURL(/\/ui\/requests\//);
  const noJsDave = await person(browser, DESKTOP, false);
  await signIn(noJsDave.page, env("WRIT_TOKEN_DAVE"), "dave");
  await noJsDave.page.goto(`${BASE}/ui/approvals`);
  const bobsCard = noJsDave.page.locator("article", { hasText: "Rotate the admin console" });
  await bobsCard.getByRole("button", { name: "Approve" }).click();
  await noJsDave.page.waitForURL(/\/ui\/requests\//);
  await until(bob.page, `${BASE}/ui`, "left</time>");
  await bob.page.locator("a[href^='/ui/grants/']").first().click();
  await bob.page.waitForURL(/\/ui\/grants\//);
  const bobsGrant = bob.page.url();
  await bob.page.getByRole("button", { name: "Revoke now" }).click();
  await until(bob.page, bobsGrant, "Verified gone from the target");
  await accessible(bob.page, "grant timeline (no JavaScript)");

  // An auditor's pages: the ledger, revocations, findings, the pictures, reviews and
  // break-glass.
  step = "the operations pages";
  const admin = await person(browser, DESKTOP);
  await signIn(admin.page, env("WRIT_TOKEN_ADMIN"), "test-admin");
  for (const [path, name] of [
    ["/ui/ledger", "ledger"],
    ["/ui/revocations", "revocations"],
    ["/ui/findings", "findings"],
    ["/ui/insights", "insights"],
    ["/ui/reviews", "reviews"],
    ["/ui/break-glass", "break-glass"],
  ]) {
    await admin.page.goto(`${BASE}${path}`);
    await accessible(admin.page, name);
    await shoot(admin.page, `${name}-desktop`);
  }
  await admin.page.goto(`${BASE}/ui/ledger`);
  await admin.page.getByRole("button", { name: "Verify the whole ledger now" }).click();
  await admin.page.getByText("Intact:").waitFor();
  await accessible(admin.page, "ledger verified");

  // Sign out ends the session.
  await alice.page.getByRole("button", { name: "Sign out" }).click();
  await alice.page.waitForURL(/\/ui\/signin/);
  await alice.page.goto(`${BASE}/ui`);
  if (!alice.page.url().includes("/ui/signin")) fail("still signed in after signing out");
} finally {
  await browser.close();
}

console.log(checked.join("\n"));
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`ok: ${checked.length} pages checked with axe-core, screenshots in ${SHOTS}`);
