// The identity pages in a real browser (Debian's Chromium, headless, playwright-core), per
// store back end: "My tokens" creates a token whose value is shown once and works, lists it
// with its last use and expiry, and revokes it (the next request with it is refused); the
// Users page (admins) changes a role, disables and enables a user, and explains the
// last-admin refusal; a disabled member's open session ends on their next click; members
// have no Users page. Screenshots go to ui-tests/artifacts/.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { backends, startServer } from "./server.mjs";

const artifacts = resolve(dirname(fileURLToPath(import.meta.url)), "..", "artifacts");
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const args = [
  "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--no-first-run", "--disable-sync", "--disable-quic",
];
const MEMBER_EMAIL = "dev@localhost";
const MEMBER_PASSWORD = "dev-password-1";

for (const backend of backends()) describe(`${backend} identity`, () => {
  let server;
  let browser;
  let admin;
  let member;
  let memberUser;
  const cspErrors = [];
  const shot = (page, name) => page.screenshot({ path: join(artifacts, `${backend}-${name}.png`), fullPage: true });
  const profiles = [];

  /** A signed-in page in its own browser profile (its own cookies). */
  const signedIn = async (email, password) => {
    const profile = mkdtempSync(join(tmpdir(), "sbui-chromium-"));
    profiles.push(profile);
    const context = await chromium.launchPersistentContext(profile, {
      executablePath, headless: true, args, viewport: { width: 1280, height: 900 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (msg) => {
      if (/Content.Security.Policy/i.test(msg.text())) cspErrors.push(msg.text());
    });
    // Destructive forms ask first; the tests say yes.
    page.on("dialog", (dialog) => dialog.accept());
    await page.goto(`${server.url}/tokens`);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/tokens$/);
    return { context, page };
  };

  const api = async (path, token = server.adminToken, init = {}) => {
    const response = await fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } });
    return { status: response.status, body: await response.json() };
  };

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    server = await startServer(backend);
    memberUser = server.cli(["user", "create", "--org", "default", "--email", MEMBER_EMAIL, "--role", "member", "--password", MEMBER_PASSWORD]);
    admin = await signedIn(server.adminEmail, server.adminPassword);
  });

  after(async () => {
    await admin?.context.close();
    await member?.context.close();
    await server?.stop();
    for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
  });

  test(`[${backend}] a token is created, shown once, used, listed and revoked`, async () => {
    const page = admin.page;
    await page.goto(`${server.url}/tokens`);
    await page.locator("#token-name").fill("browser-ci");
    await page.locator("#token-expiry").selectOption("30");
    await page.locator("#create-token").click();
    const shown = page.locator("#new-token");
    await shown.waitFor();
    const value = await shown.inputValue();
    assert.match(value, /^sb_[0-9a-f]{32}_/);
    await shot(page, "token-created");
    assert.equal((await api("/v1/llm-providers", value)).status, 200, "the new token works");

    // The list shows it without the value: its prefix, when it was last used, when it expires.
    const listing = await api("/v1/tokens");
    const meta = listing.body.result.find((t) => t.name === "browser-ci");
    assert.ok(meta, "listed by the API");
    for (let i = 0; i < 50 && !(await api("/v1/tokens")).body.result.find((t) => t.id === meta.id).lastUsedAt; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.goto(`${server.url}/tokens`);
    assert.equal((await page.content()).includes(value), false, "the value is never shown again");
    const row = page.locator(`#tokens tr[data-token='${meta.id}']`);
    assert.match(await row.textContent(), /browser-ci/);
    assert.match(await row.textContent(), new RegExp(meta.prefix));
    assert.match(await row.locator("td.expires").textContent(), /UTC/);
    assert.match(await row.locator("td.last-used").textContent(), /UTC/, "last use is shown");
    await shot(page, "tokens");

    await row.locator("button.revoke").click();
    await page.waitForURL(/done=token-revoked/);
    assert.equal(await page.locator(`#tokens tr[data-token='${meta.id}']`).count(), 0);
    assert.equal((await api("/v1/llm-providers", value)).status, 401, "refused on the next request");
  });

  test(`[${backend}] the Users page changes roles, disables and explains the last-admin rule`, async () => {
    member = await signedIn(MEMBER_EMAIL, MEMBER_PASSWORD);
    assert.equal(await member.page.locator("nav a[href='/users']").count(), 0, "members have no Users page");
    assert.equal(await member.page.locator("nav a[href='/tokens']").count(), 1);
    await member.page.goto(`${server.url}/users`);
    assert.match(await member.page.locator("main").textContent(), /Only administrators/);

    const page = admin.page;
    await page.goto(`${server.url}/users`);
    const row = page.locator(`#users tr[data-user='${MEMBER_EMAIL}']`);
    await row.locator("select.role").selectOption("admin");
    await row.locator("button.save-role").click();
    await page.waitForURL(/done=user-role/);
    const id = memberUser.user.id;
    assert.equal((await api(`/v1/users/${id}`)).body.result.role, "admin");
    await page.locator(`#users tr[data-user='${MEMBER_EMAIL}'] select.role`).selectOption("member");
    await page.locator(`#users tr[data-user='${MEMBER_EMAIL}'] button.save-role`).click();
    await page.waitForURL(/done=user-role/);
    assert.equal((await api(`/v1/users/${id}`)).body.result.role, "member");

    // The only admin cannot demote themselves: the page says why.
    const self = page.locator(`#users tr[data-user='${server.adminEmail}']`);
    await self.locator("select.role").selectOption("member");
    await self.locator("button.save-role").click();
    const error = page.locator("#user-error");
    await error.waitFor();
    assert.match(await error.textContent(), /last active admin/);
    await shot(page, "users-last-admin");

    // Disabled: the member's token and open session stop working at once.
    await page.goto(`${server.url}/users`);
    assert.equal((await api("/v1/llm-providers", memberUser.token)).status, 200);
    await page.locator(`#users tr[data-user='${MEMBER_EMAIL}'] button.disable`).click();
    await page.waitForURL(/done=user-disabled/);
    assert.match(await page.locator(`#users tr[data-user='${MEMBER_EMAIL}'] td.status`).textContent(), /disabled/);
    await shot(page, "users");
    assert.equal((await api("/v1/llm-providers", memberUser.token)).status, 401);
    await member.page.goto(`${server.url}/tokens`);
    assert.match(member.page.url(), /\/login/, "the disabled member's session ended");

    await page.locator(`#users tr[data-user='${MEMBER_EMAIL}'] button.enable`).click();
    await page.waitForURL(/done=user-enabled/);
    assert.equal((await api("/v1/llm-providers", memberUser.token)).status, 200);
  });

  test(`[${backend}] nothing was blocked by the Content-Security-Policy`, () => {
    assert.deepEqual(cspErrors, []);
  });
});
