// Starts the real `switchboard serve` for the browser suite: a fresh database (SQLite in a
// temporary folder, or a new PostgreSQL database), a fixed test master key, a free port.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");

/** The binary under test: $SWITCHBOARD_BIN, else the debug build `cargo test` made. */
export const binary = process.env.SWITCHBOARD_BIN || join(repo, "target", "debug", "switchboard");

/** A fixed test master key (base64 of 32 bytes), as in the Rust integration tests. */
const MASTER_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/** The back ends to run: SQLite always, PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is set. */
export function backends() {
  const all = ["sqlite"];
  if (process.env.SWITCHBOARD_TEST_POSTGRES_URL) all.push("postgres");
  else if (process.env.SWITCHBOARD_REQUIRE_POSTGRES === "1") {
    throw new Error("SWITCHBOARD_REQUIRE_POSTGRES=1 but SWITCHBOARD_TEST_POSTGRES_URL is not set");
  }
  return all;
}

function freshPostgres() {
  const base = process.env.SWITCHBOARD_TEST_POSTGRES_URL;
  const name = `sbui_${randomUUID().replaceAll("-", "")}`;
  execFileSync("psql", [base, "-v", "ON_ERROR_STOP=1", "-q", "-c", `CREATE DATABASE ${name}`]);
  return `${base.slice(0, base.lastIndexOf("/"))}/${name}`;
}

/**
 * Starts a server (with `extraEnv` added to its environment); resolves once it listens, with its URL, the first-start admin
 * credentials it printed, and a `cli` function for commands against the same database.
 */
export async function startServer(backend, extraEnv = {}) {
  if (!existsSync(binary)) throw new Error(`no switchboard binary at ${binary}: run cargo build -p switchboard`);
  const dir = mkdtempSync(join(tmpdir(), "sbui-"));
  const databaseUrl = backend === "postgres" ? freshPostgres() : `sqlite://${dir}/switchboard.db`;
  const env = {
    ...process.env,
    SWITCHBOARD_DATABASE_URL: databaseUrl,
    SWITCHBOARD_MASTER_KEY: MASTER_KEY,
    SWITCHBOARD_MASTER_KEY_FILE: join(dir, "master.key"),
    SWITCHBOARD_LOG: "info",
    SWITCHBOARD_SHUTDOWN_DRAIN_SECONDS: "0",
    ...extraEnv,
  };
  const child = spawn(binary, ["serve"], {
    env: { ...env, SWITCHBOARD_LISTEN: "127.0.0.1:0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => { stdout += chunk; });
  const addr = await new Promise((resolveAddr, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 60_000);
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
      for (const line of stderr.split("\n")) {
        try {
          const entry = JSON.parse(line);
          if (entry.message === "listening" && entry.addr) {
            clearTimeout(timer);
            resolveAddr(entry.addr);
          }
        } catch { /* not a complete JSON line yet */ }
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}:\n${stderr}`)));
  });
  // The banner is printed before the server listens.
  const banner = (prefix) => stdout.split("\n").find((l) => l.startsWith(prefix))?.slice(prefix.length).trim();
  return {
    url: `http://${addr}`,
    adminEmail: "admin@localhost",
    adminPassword: banner("Admin UI password (shown once): "),
    adminToken: banner("Admin API token (shown once): "),
    cli: (args) => JSON.parse(execFileSync(binary, [...args, "--json"], { env, stdio: ["ignore", "pipe", "pipe"] }).toString()),
    log: () => stderr,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts the provider simulator (`switchboard mock`) on a free loopback port, accepting
 * only `openaiKey` as an OpenAI key: a reachable upstream that refuses every other key.
 */
export async function startMock(openaiKey) {
  const child = spawn(binary, ["mock", "--listen", "127.0.0.1:0", "--openai-key", openaiKey], {
    env: { ...process.env, SWITCHBOARD_LOG: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error("the simulator did not start")), 30_000);
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      const found = stdout.match(/provider simulator listening on (http:\/\/\S+)/);
      if (found) {
        clearTimeout(timer);
        resolveUrl(found[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`the simulator exited with ${code}`)));
  });
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
    },
  };
}
