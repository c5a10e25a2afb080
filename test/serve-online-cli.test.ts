/**
 * `lenpred serve --state-dir` as a real process (issue 11, phase 2): kill -9 loses no acknowledged observation,
 * a restart resumes from the state dir, a second server on the same dir exits 2 with a clear error, and the
 * observe token is never logged.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../src/util/paths.js";
import { tempDir } from "./helpers/tmp.js";

function startServe(args: string[], env: Record<string, string> = {}): { child: ChildProcess; output: () => string; address: Promise<string>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), "serve", "--port", "0", "--synthetic", "--no-warmup", ...args], {
    cwd: repoRoot, env: { ...process.env, ...env },
  });
  let out = "";
  let stdout = "";
  child.stdout!.on("data", (d) => ((out += d), (stdout += d)));
  child.stderr!.on("data", (d) => (out += d));
  const address = new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", () => {
      const ready = stdout.split("\n").slice(0, -1).map((l) => JSON.parse(l) as { msg?: string; address?: string }).find((l) => l.msg === "ready");
      if (ready) resolve(ready.address!);
    });
    child.on("exit", () => reject(new Error(`serve exited before it was ready:\n${out}`)));
  });
  address.catch(() => undefined);
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, address, exit };
}

const observe = (url: string, body: unknown, token?: string) =>
  fetch(url + "/v1/observe", { method: "POST", headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });

describe("lenpred serve --state-dir (CLI)", () => {
  it("kill -9 loses no acknowledged observation; the restart resumes; a second server on the dir exits 2", async () => {
    const stateDir = tempDir("lenpred-serve-kill-");
    const token = "tok-do-not-log-42";
    const first = startServe(["--state-dir", stateDir], { LENPRED_OBSERVE_TOKEN: token });
    let acked = 0;
    let sent = 0;
    try {
      const url = await first.address;
      // A second server on the same state dir: a clear error, exit 2.
      const second = startServe(["--state-dir", stateDir]);
      expect(await second.exit).toBe(2);
      expect(second.output()).toMatch(/state dir is locked by running process \d+ \(one writer per state dir/);
      // 8 concurrent clients, each sending batches of 5 and counting what was acknowledged with 202.
      const client = async (c: number) => {
        for (let i = 0; ; i++) {
          const batch = Array.from({ length: 5 }, (_, k) => ({ prompt: `client ${c} request ${i}.${k} `.repeat(3), output_tokens: 10 + k, model: c % 2 ? "odd" : "even" }));
          sent += 5;
          const r = await observe(url, { observations: batch }, token).catch(() => undefined);
          if (!r) return; // the server was killed mid-request: not acknowledged
          expect(r.status).toBe(202);
          acked += 5;
        }
      };
      const clients = Array.from({ length: 8 }, (_, c) => client(c));
      while (acked < 400) await new Promise((r) => setTimeout(r, 5));
      first.child.kill("SIGKILL");
      await Promise.all(clients);
      expect(await first.exit).toBe(null);
    } finally {
      first.child.kill("SIGKILL");
    }
    expect(first.output()).not.toContain(token);

    // Restart on the same dir (the dead writer's lock is stale): every acknowledged observation is learned again.
    const again = startServe(["--state-dir", stateDir]);
    try {
      const url = await again.address;
      const stats = await (await fetch(url + "/v1/observe/stats")).json() as { targets: { model: string; observations: number }[]; resumed: number };
      const learned = stats.targets.reduce((s, t) => s + t.observations, 0);
      expect(learned).toBeGreaterThanOrEqual(acked);
      expect(learned).toBeLessThanOrEqual(sent);
      expect(stats.targets.map((t) => t.model).sort()).toEqual(["even", "odd"]);
      const metrics = await (await fetch(url + "/metrics")).text();
      const counted = [...metrics.matchAll(/^lenpred_observations_total\{model="(?:odd|even)"\} (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
      expect(counted).toBe(learned);
      // Without a token configured this time, writes are open again.
      expect((await observe(url, { prompt: "one more", output_tokens: 3, model: "odd" })).status).toBe(202);
      again.child.kill("SIGTERM");
      expect(await again.exit).toBe(0);
    } finally {
      again.child.kill("SIGKILL");
    }
  }, 60_000);
});
