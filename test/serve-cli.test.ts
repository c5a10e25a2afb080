/** `lenpred serve` as a real process: start-up errors, and graceful shutdown that drains an in-flight request. */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../src/util/paths.js";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";
import { writeFileSync } from "node:fs";
import { writeTinyModel } from "./helpers/predictor-fixtures.js";

/** Start `lenpred serve`; `address` resolves from its "ready" log line (pino JSON on stdout). */
function startServe(args: string[]): { child: ChildProcess; stdout: () => string; output: () => string; address: Promise<string>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), "serve", "--port", "0", ...args], { cwd: repoRoot });
  let out = "";
  let stdout = "";
  child.stdout!.on("data", (d) => ((out += d), (stdout += d)));
  child.stderr!.on("data", (d) => (out += d));
  const address = new Promise<string>((resolve, reject) => {
    const onData = () => {
      const ready = jsonLines(stdout).find((l) => l.msg === "ready");
      if (ready) {
        child.stdout!.off("data", onData);
        resolve(ready.address as string);
      }
    };
    child.stdout!.on("data", onData);
    child.on("exit", () => reject(new Error(`serve exited before it was ready:\n${out}`)));
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, stdout: () => stdout, output: () => out, address, exit };
}

/** Every complete stdout line parsed as JSON (throws on a line that is not: stdout must be JSON lines only). */
function jsonLines(text: string): Array<Record<string, unknown>> {
  return text.split("\n").slice(0, -1).map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("lenpred serve (CLI)", () => {
  it("documents its endpoints in --help", () => {
    const r = runCli(["serve", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("/v1/predict");
    expect(r.stdout).toContain("--max-batch");
  });

  it("takes at most one of --model or --synthetic", () => {
    const r = runCli(["serve", "--synthetic", "--model", "alpaca-s3"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/at most one of --model <dir> or --synthetic/);
  });

  it("serves the bundled default model (alpaca-s3) without --model, as predict does", async () => {
    const s = startServe(["--no-warmup"]);
    try {
      const url = await s.address;
      const res = await fetch(url + "/v1/predict", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "Write a haiku about autumn." }) });
      expect(res.status).toBe(200);
      const got = (await res.json()) as { upperBound: number; bucket: number };
      // The committed alpaca-s3 model: 8 buckets of 128 tokens.
      const { LengthPredictor } = await import("../src/predictor/length-predictor.js");
      const p = await LengthPredictor.load(join(repoRoot, "models", "alpaca-s3"));
      const want = await p.predict("Write a haiku about autumn.");
      await p.dispose();
      expect(got).toMatchObject({ bucket: want.bucket, upperBound: want.upperBound });
    } finally {
      s.child.kill("SIGTERM");
      await s.exit;
    }
  });

  it("fails with exit 2 naming the file when the model directory is not one", () => {
    const dir = tempDir();
    const r = runCli(["serve", "--model", dir, "--port", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(dir, "lenpred.json"));
  });

  it("fails with exit 2 naming the field for an unknown model kind", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "lenpred.json"), JSON.stringify({ kind: "no-such-kind", tokenizer: "x", buckets: { kind: "uniform", edges: [10, 20] } }));
    const r = runCli(["serve", "--model", dir, "--port", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/field 'kind'.*no-such-kind/);
  });

  it("rejects bad numeric options and inconsistent limits", () => {
    const r = runCli(["serve", "--synthetic", "--max-batch", "0"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/max-batch.*integer >= 1/);
    expect(runCli(["serve", "--synthetic", "--max-queue-ms", "0"]).stderr).toMatch(/max-queue-ms/);
    const q = runCli(["serve", "--synthetic", "--port", "0", "--max-queue", "8", "--max-prompts", "16"]);
    expect(q.code).toBe(2);
    expect(q.stderr).toMatch(/maxQueue \(8\) must be >= maxPrompts \(16\)/);
  });

  it("on SIGTERM finishes the in-flight request, refuses new ones and exits 0", async () => {
    // Every batch takes 1.5 s, so the request below is still in flight when SIGTERM arrives.
    const s = startServe(["--synthetic", "--synthetic-batch-ms", "1500", "--synthetic-prompt-ms", "0", "--no-warmup", "--max-wait-ms", "0"]);
    const url = await s.address;
    const inFlight = fetch(url + "/v1/predict", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "x".repeat(400) }),
    });
    // The batch is dispatched at once (max wait 0) and runs 1.5 s; SIGTERM lands well inside it.
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    s.child.kill("SIGTERM");
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ bucket: 1, upperBound: 128 }); // 100 tokens by the synthetic rule
    // New work is refused: 503 on a kept-alive connection, or no connection at all once the listener is closed.
    const late = await fetch(url + "/healthz").then((r) => r.status, () => "refused");
    expect([503, "refused"]).toContain(late);
    expect(await s.exit).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const lines = jsonLines(s.stdout());
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/loading the model/), "ready", "draining in-flight requests", "stopped"]);
    expect(lines[2]).toMatchObject({ signal: "SIGTERM" });
  });

  it("logs JSON lines only on stdout, and 'ready' only after the model directory has loaded", async () => {
    const dir = join(tempDir(), "tiny");
    writeTinyModel(dir, { kind: "uniform", edges: [1, 2, 3, 4] }, 4, {});
    const s = startServe(["--model", dir]);
    const url = await s.address;
    // Once "ready" is logged the model answers at once: readiness was not announced before the load.
    expect((await fetch(url + "/readyz")).status).toBe(200);
    const r = await fetch(url + "/v1/predict", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "write a poem" }) });
    expect(r.status).toBe(200);
    s.child.kill("SIGTERM");
    expect(await s.exit).toBe(0);
    const lines = jsonLines(s.stdout()); // throws if any stdout line is not JSON
    const msgs = lines.map((l) => l.msg);
    expect(msgs.indexOf("ready")).toBeGreaterThan(0);
    expect(msgs.some((m) => /listening/.test(String(m)))).toBe(false);
    expect(lines.find((l) => l.msg === "ready")).toMatchObject({ predictor: "distilbert", buckets: 4, worker: true, address: url });
  });
});
