/** `lenpred proxy` as a real process: argument errors, a real model behind the online learner, SIGTERM draining, durable state. */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";
import { trainMedian } from "../src/baselines/constant.js";
import { uniformBuckets } from "../src/data/buckets.js";
import { repoRoot } from "../src/util/paths.js";
import { runCli } from "./helpers/cli.js";
import { startFakeLlm } from "../bench/lib/fake-llm.js";
import { tempDir } from "./helpers/tmp.js";

describe("lenpred proxy (CLI)", () => {
  it("documents itself in --help", () => {
    const r = runCli(["proxy", "--help"]);
    expect(r.code).toBe(0);
    for (const s of ["--upstream", "--policy", "--kv-budget-tokens", "--upstream-kind", "/v1/chat/completions"]) expect(r.stdout).toContain(s);
  });

  it("bad arguments exit 2 with one line naming the flag", () => {
    for (const [args, re] of [
      [[], /--upstream/],
      [["--upstream", "ftp://x"], /--upstream must be a URL/],
      [["--upstream", "http://127.0.0.1:9", "--policy", "s3"], /--kv-budget-tokens/],
      [["--upstream", "http://127.0.0.1:9", "--max-concurrency", "0"], /--max-concurrency expects an integer >= 1/],
      [["--upstream", "http://127.0.0.1:9", "--quantile", "0"], /--quantile expects a number > 0/],
    ] as const) {
      const r = runCli(["proxy", ...args]);
      expect([r.code, r.stderr.trim().split("\n").length]).toEqual([2, 1]);
      expect(r.stderr).toMatch(re);
    }
  });

  it("serves through a real model directory, then drains a queued and an in-flight request on SIGTERM and exits 0", async () => {
    const dir = tempDir();
    const scheme = { buckets: uniformBuckets(1024, 8), tokenizer: "llama", specialTokens: false, label: "test", template: "raw" };
    const recs = [10, 20, 300].map((n, i) => ({ id: i, prompt: `p${i}`, prompt_tokens: 1, output_tokens: n, output_length_bucket: Math.floor(n / 128) }));
    await trainMedian(recs, scheme).save(dir);
    const llm = await startFakeLlm({ concurrency: 1 });
    afterAll(() => llm.close());
    const state = join(tempDir(), "state");
    const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), "proxy", "--upstream", llm.url, "--model", dir,
      "--port", "0", "--policy", "sjf", "--max-concurrency", "1", "--state-dir", state], { cwd: repoRoot });
    let out = "";
    let stderr = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (stderr += d));
    // stdout carries only pino JSON lines, as serve's does.
    const lines = () => out.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { msg: string; address?: string; queued?: number; inFlight?: number });
    const logged = (msg: string) => lines().find((l) => l.msg === msg);
    const exit = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    try {
      while (!logged("ready")) {
        if (child.exitCode !== null) throw new Error(out + stderr);
        await new Promise((r) => setTimeout(r, 20));
      }
      const url = logged("ready")!.address!;
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 });
      expect((await client.completions.create({ model: "m", prompt: "hello tokens=3" })).choices[0]!.text).toBe("w0 w1 w2 ");
      llm.hold();
      const inflight = client.completions.create({ model: "m", prompt: "one tokens=2" });
      while (llm.waiting < 1) await new Promise((r) => setTimeout(r, 5));
      const queued = client.completions.create({ model: "m", prompt: "two tokens=1" });
      while (!/lenpred_proxy_queue_length 1/.test(await (await fetch(`${url}/metrics`)).text())) await new Promise((r) => setTimeout(r, 5));
      child.kill("SIGTERM");
      const draining = () => logged("draining in-flight requests");
      while (!draining()) await new Promise((r) => setTimeout(r, 5));
      expect(draining()).toMatchObject({ queued: 1, inFlight: 1 });
      llm.release();
      const [a, b] = await Promise.all([inflight, queued]);
      expect([a.choices[0]!.text, b.choices[0]!.text]).toEqual(["w0 w1 ", "w0 "]);
      expect(await exit).toBe(0);
      expect(logged("stopped")).toBeDefined();
      // The three answers were observed by the online learner and are in its state dir, snapshot included.
      const snap = JSON.parse(readFileSync(join(state, "snapshot.json"), "utf8")) as { learnedSeq: number; targets: Record<string, unknown> };
      expect(snap.learnedSeq).toBe(3);
      expect(Object.keys(snap.targets)).toEqual(["m"]);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
