// The web UI in a real browser: Debian's Chromium, headless, driven by playwright-core.
// Per store back end: sign in with the first-start password, connect a provider through
// its form, see a refused configuration explained, change the defaults and confirm them
// through the JSON API, see a failed connection validation explained per model (against
// the provider simulator, which refuses the key), validate and save with the right key,
// find one chat call on the invocations page and in the usage chart, and check that a
// member cannot change the defaults. Screenshots of the pages go to ui-tests/artifacts/.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { backends, startMock, startServer } from "./server.mjs";

const artifacts = resolve(dirname(fileURLToPath(import.meta.url)), "..", "artifacts");
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
// No sandbox as root; no background traffic (the network is closed here).
const args = [
  "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--no-first-run", "--disable-sync", "--disable-quic",
];
const MEMBER_EMAIL = "member@localhost";
const MEMBER_PASSWORD = "member-password-1";
/** The only OpenAI key the simulator accepts. */
const RIGHT_KEY = "right-key";
/** The simulator listens on loopback over plain HTTP: let the server reach it. */
const EGRESS = { SWITCHBOARD_EGRESS_ALLOW: "127.0.0.1/32", SWITCHBOARD_EGRESS_ALLOW_HTTP: "true" };

for (const backend of backends()) describe(backend, () => {
  let server;
  let mock;
  let context;
  let profile;
  let page;
  const cspErrors = [];
  const shot = (name) => page.screenshot({ path: join(artifacts, `${backend}-${name}.png`), fullPage: true });

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    mock = await startMock(RIGHT_KEY);
    server = await startServer(backend, EGRESS);
    assert.ok(server.adminPassword, "first start printed the admin UI password");
    server.cli(["user", "create", "--org", "default", "--email", MEMBER_EMAIL, "--role", "member", "--password", MEMBER_PASSWORD]);
    profile = mkdtempSync(join(tmpdir(), "sbui-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath, headless: true, args, viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (msg) => {
      if (/Content.Security.Policy/i.test(msg.text())) cspErrors.push(msg.text());
    });
  });

  after(async () => {
    await context?.close();
    await server?.stop();
    await mock?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const api = async (path) => {
    const response = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    return { status: response.status, body: await response.json() };
  };

  const signIn = async (email, password) => {
    await page.goto(`${server.url}/settings/ai`);
    assert.match(page.url(), /\/login\?next=/, "signed-out visitors are sent to the sign-in page");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/settings\/ai$/);
  };

  test(`[${backend}] the admin signs in and sees the AI tab`, async () => {
    await page.goto(`${server.url}/login`);
    await shot("login");
    await signIn(server.adminEmail, server.adminPassword);
    assert.equal(await page.locator("#providers tr[data-provider='managed']").count(), 1);
    assert.equal(await page.locator("#default-source").textContent(), "system");
    assert.equal(await page.locator("#save-defaults").isVisible(), true);
    assert.equal(await page.locator("#logout").isVisible(), true);
  });

  test(`[${backend}] a refused configuration is explained next to the form`, async () => {
    await page.goto(`${server.url}/providers/openai-compatible`);
    await page.locator("#f-baseUrl").fill("https://169.254.169.254/v1");
    await page.locator("#f-models").fill("local-model");
    await page.locator("#save-provider").click();
    const error = page.locator("#form-error");
    await error.waitFor();
    assert.match(await error.textContent(), /baseUrl is not allowed/);
    assert.equal(await page.locator("#f-baseUrl").getAttribute("aria-invalid"), "true");
    await shot("provider-refused");
    assert.equal((await api("/v1/llm-providers/openai-compatible")).status, 404, "nothing was saved");
  });

  test(`[${backend}] a secret and a provider are connected through the forms`, async () => {
    await page.goto(`${server.url}/secrets`);
    await page.getByLabel("Name", { exact: true }).fill("gateway-key");
    await page.getByLabel("Value").fill("sk-test-not-a-real-key");
    await page.locator("#create-secret").click();
    await page.waitForURL(/done=secret-created/);
    assert.equal(await page.locator("#secrets tr[data-secret='gateway-key']").count(), 1);
    assert.equal((await page.content()).includes("sk-test-not-a-real-key"), false, "values are never shown");
    await shot("secrets");

    await page.goto(`${server.url}/providers/openai-compatible`);
    await page.locator("#f-baseUrl").fill("https://llm.example.com/v1");
    await page.locator("#f-apiKeySecretName").selectOption("gateway-key");
    await page.locator("#f-customHeaders").fill("X-Team: ui-tests");
    await page.locator("#f-models").fill("small-model\nlarge-model");
    await page.locator("#save-provider").click();
    await page.waitForURL(/done=provider-saved/);
    await shot("provider");
    const saved = await api("/v1/llm-providers/openai-compatible");
    assert.equal(saved.status, 200);
    assert.equal(saved.body.result.config.apiKeySecretName, "gateway-key");
    assert.deepEqual(Object.keys(saved.body.result.effectiveModels), ["small-model", "large-model"]);
  });

  test(`[${backend}] the admin changes the defaults; the API agrees`, async () => {
    await page.goto(`${server.url}/settings/ai`);
    const row = page.locator("#providers tr[data-provider='openai-compatible']");
    assert.match(await row.textContent(), /large-model/);
    assert.match(await row.textContent(), /not validated/);
    await page.locator("#default-provider").selectOption("openai-compatible");
    // The model list follows the provider (the script narrows it to that provider's models).
    const models = await page.locator("#default-model option").evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(models, ["small-model", "large-model"]);
    await page.locator("#default-model").selectOption("large-model");
    await page.locator("#save-defaults").click();
    await page.waitForURL(/done=defaults/);
    assert.equal(await page.locator("#default-source").textContent(), "organization");
    await shot("ai-tab");
    const defaults = await api("/v1/llm-providers/defaults");
    assert.equal(defaults.body.result.provider, "openai-compatible");
    assert.equal(defaults.body.result.model, "large-model");
    assert.equal(defaults.body.result.source, "organization");
    assert.equal(defaults.body.result.updatedBy, server.adminEmail);

    await page.setViewportSize({ width: 390, height: 844 });
    await shot("ai-tab-phone");
    await page.setViewportSize({ width: 1280, height: 900 });
    for (const [path, name] of [["/providers", "providers"], ["/settings/data", "data-controls"], ["/audit", "audit-log"]]) {
      await page.goto(`${server.url}${path}`);
      await shot(name);
    }
    assert.match(await page.locator("#audit").textContent(), /defaults\.update/);
  });

  test(`[${backend}] a failed validation is explained on the provider form`, async () => {
    await page.goto(`${server.url}/providers/openai-compatible`);
    await page.locator("#f-baseUrl").fill(`${mock.url}/v1`);
    assert.equal(await page.locator("#f-apiKeySecretName").inputValue(), "gateway-key", "a key the simulator refuses");
    await page.locator("#validate-provider").click();
    const error = page.locator("#form-error");
    await error.waitFor();
    assert.match(await error.textContent(), /Connection test failed/);
    for (const model of ["small-model", "large-model"]) {
      const result = page.locator(`#validation-results li[data-model='${model}']`);
      assert.equal(await result.getAttribute("class"), "fail");
      assert.match(await result.textContent(), /Invalid API key/);
    }
    await shot("provider-validation-failed");
    const stored = await api("/v1/llm-providers/openai-compatible");
    assert.equal(stored.body.result.config.baseUrl, "https://llm.example.com/v1", "nothing was saved");

    await page.goto(`${server.url}/settings/ai`);
    const cell = page.locator("#providers tr[data-provider='openai-compatible'] td.validation");
    assert.match(await cell.textContent(), /failed: 2 of 2 models/);
    assert.match(await cell.textContent(), /Invalid API key/);
  });

  test(`[${backend}] validate and save with the right key, then one chat call shows up`, async () => {
    await page.goto(`${server.url}/secrets`);
    await page.getByLabel("Name", { exact: true }).fill("mock-key");
    await page.getByLabel("Value", { exact: true }).fill(RIGHT_KEY);
    await page.locator("#create-secret").click();
    await page.waitForURL(/done=secret-created/);

    await page.goto(`${server.url}/providers/openai-compatible`);
    await page.locator("#f-baseUrl").fill(`${mock.url}/v1`);
    await page.locator("#f-apiKeySecretName").selectOption("mock-key");
    // Keyboard only: focus the button and press Enter.
    await page.locator("#validate-provider").focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/done=provider-validated/);
    assert.match(await page.locator("#last-validation").textContent(), /passed/);
    assert.equal(await page.locator("#validation-results li.pass").count(), 2);
    await shot("provider-validated");
    await page.goto(`${server.url}/settings/ai`);
    assert.match(await page.locator("#providers tr[data-provider='openai-compatible'] td.validation").textContent(), /passed/);
    await shot("ai-tab-validated");

    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ provider: "openai-compatible", model: "large-model", messages: [{ role: "user", content: "Hello from the browser suite" }] }),
    });
    assert.equal(response.status, 200, await response.text());

    // The recorder writes off the request path: reload until the row is there.
    const rows = page.locator("#invocations tr[data-invocation]");
    for (let i = 0; i < 50 && (await rows.count()) === 0; i++) {
      await page.goto(`${server.url}/invocations`);
      if ((await rows.count()) === 0) await page.waitForTimeout(100);
    }
    assert.equal(await rows.count(), 1);
    const row = await rows.first().textContent();
    assert.match(row, /openai-compatible/);
    assert.match(row, /large-model/);
    assert.match(row, /Completed/);
    assert.match(row, new RegExp(server.adminEmail));
    await page.locator("#filter-status").selectOption("Failed");
    await page.locator("#apply-filters").click();
    await page.waitForURL(/status=Failed/);
    assert.equal(await page.locator("#no-invocations").isVisible(), true);
    await page.goto(`${server.url}/invocations`);
    await shot("invocations");
    await rows.first().locator("a").click();
    await page.waitForURL(/\/invocations\/.+/);
    assert.match(await page.locator("#content-prompt").textContent(), /Hello from the browser suite/);
    await shot("invocation");

    await page.goto(`${server.url}/usage`);
    const bar = page.locator("#usage-chart g.bar[data-label='openai-compatible / large-model']");
    assert.equal(await bar.count(), 1);
    assert.ok(Number(await bar.locator("rect.requests").getAttribute("width")) > 0);
    const usage = page.locator("#usage tr[data-usage='openai-compatible/large-model']");
    assert.match(await usage.textContent(), /\b1\b/);
    await shot("usage");
  });

  test(`[${backend}] a member sees the AI tab read-only and cannot change the defaults`, async () => {
    await page.locator("#logout").click();
    await page.waitForURL(/\/login$/);
    await signIn(MEMBER_EMAIL, MEMBER_PASSWORD);
    assert.equal(await page.locator("#save-defaults").count(), 0);
    assert.equal(await page.locator("#default-provider").isDisabled(), true);
    assert.equal(await page.locator("#default-model").isDisabled(), true);
    await shot("ai-tab-member");
    // Even a hand-made POST with the member's own valid CSRF token is refused.
    const csrf = await page.locator("input[name='csrf']").first().getAttribute("value");
    const status = await page.evaluate(async (token) => {
      const body = new URLSearchParams({ csrf: token, provider: "managed", model: "gpt-5" });
      const response = await fetch("/settings/ai/defaults", { method: "POST", body });
      return response.status;
    }, csrf);
    assert.equal(status, 403);
    const defaults = await api("/v1/llm-providers/defaults");
    assert.equal(defaults.body.result.model, "large-model", "unchanged");
    // Members see only their own invocations (none), without a user filter.
    await page.goto(`${server.url}/invocations`);
    assert.equal(await page.locator("#no-invocations").isVisible(), true);
    assert.equal(await page.locator("#filter-user").count(), 0);
  });

  test(`[${backend}] nothing was blocked by the Content-Security-Policy`, () => {
    assert.deepEqual(cspErrors, []);
  });
});
