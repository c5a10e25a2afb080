/**
 * The PyTorch peer of the engine benchmarks (../shared/bench/peer_torch_distilbert.py, Debian python3-torch).
 * Before timing it, a few-second probe measures one matmul in the peer's python: Debian's torch falls back to
 * the reference BLAS when libopenblas0 is missing (≈ 5 GFLOP/s instead of ≈ 130 on a 1280×768·768×768
 * matmul), which would make the peer run for half an hour and compare the engine against a strawman. Such a
 * peer is reported in one line and skipped.
 *
 * Python: $LENPRED_PEER_PYTHON (default `python3` on PATH); script: sharedDir()/bench/.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { sharedDir } from "../../src/util/paths.js";

/** Below this a peer is not using an optimised BLAS (reference BLAS ≈ 5, OpenBLAS on 2 Zen cores ≈ 130). */
export const MIN_PEER_GFLOPS = 20;
export const PEER_INSTALL = "apt-get install -y python3-torch libopenblas0";

export type PeerProbe =
  | { ok: true; python: string; script: string; gflops: number; blas: string[] }
  | { ok: false; reason: string };

function peerPython(): string {
  return process.env.LENPRED_PEER_PYTHON || "python3";
}

function peerScript(): string {
  return join(sharedDir(), "bench", "peer_torch_distilbert.py");
}

const PROBE = `
import json, sys, time
try:
    import torch
except Exception as e:
    print(json.dumps({"error": "cannot import torch (%s)" % e}))
    sys.exit(3)
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.rand(1280, 768), torch.rand(768, 768)
for _ in range(2):
    a @ b
ts = []
for _ in range(5):
    t = time.perf_counter()
    a @ b
    ts.append(time.perf_counter() - t)
ts.sort()
blas = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.lower() and ".so" in l})
print(json.dumps({"gflops": 2 * 1280 * 768 * 768 / ts[len(ts) // 2] / 1e9, "blas": blas}))
`;

/** Is the peer installed and fast enough to be worth timing? */
export function probePeer(threads: number): PeerProbe {
  const script = peerScript();
  if (!existsSync(script)) return { ok: false, reason: `peer script not found (${script}; set LENPRED_SHARED)` };
  const python = peerPython();
  const r = spawnSync(python, ["-c", PROBE, String(threads)], { encoding: "utf8", timeout: 120_000 });
  if (r.error) return { ok: false, reason: `cannot run ${python} (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); set LENPRED_PEER_PYTHON` };
  let res: { gflops?: number; blas?: string[]; error?: string } = {};
  try {
    res = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
  } catch {
    // handled below
  }
  if (res.error) return { ok: false, reason: `${python}: ${res.error}; install the peer with: ${PEER_INSTALL}` };
  if (r.status !== 0 || typeof res.gflops !== "number") return { ok: false, reason: `the probe failed in ${python} (exit ${r.status}): ${r.stderr.trim().slice(-300)}` };
  const blas = res.blas ?? [];
  if (res.gflops < MIN_PEER_GFLOPS) {
    return {
      ok: false,
      reason: `torch in ${python} multiplies at ${res.gflops.toFixed(1)} GFLOP/s (1280×768·768×768; BLAS: ${blas.join(", ") || "unknown"}), ` +
        `the reference BLAS rather than OpenBLAS: timing it would take ~30 min and compare against a strawman; fix with: ${PEER_INSTALL}`,
    };
  }
  return { ok: true, python, script, gflops: res.gflops, blas };
}

export interface PeerRun {
  /** The peer's JSON result, when it ran. */
  result?: Record<string, number | string>;
  /** Why it did not run (one line), otherwise. */
  skipped?: string;
}

/** Probe, then run the peer script with `--json --threads N`; a skip or failure is one line on `log`. */
export function runPeer(threads: number, log: (msg: string) => void): PeerRun {
  const probe = probePeer(threads);
  if (!probe.ok) {
    log(`peer: skipped: ${probe.reason}`);
    return { skipped: probe.reason };
  }
  log(`peer: PyTorch DistilBERT in ${probe.python} (matmul probe ${probe.gflops.toFixed(0)} GFLOP/s; this takes a minute or two)…`);
  const r = spawnSync(probe.python, [probe.script, "--json", "--threads", String(threads)], { encoding: "utf8", timeout: 30 * 60_000 });
  const last = r.stdout?.trim().split("\n").pop();
  try {
    if (r.status === 0 && last) return { result: JSON.parse(last) as Record<string, number | string> };
  } catch {
    // reported below
  }
  const reason = `failed (exit ${r.status}): ${r.stderr?.trim().slice(-500)}`;
  log(`peer: ${reason}`);
  return { skipped: reason };
}
