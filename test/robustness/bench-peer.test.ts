/**
 * The benchmarks' PyTorch peer (issue 9, item 16): a peer whose torch runs on the reference BLAS is detected by a
 * matmul probe in the peer's own python and skipped with one line (it used to be timed for 25 minutes and give
 * `"peer": null`); the python comes from LENPRED_PEER_PYTHON and the script from sharedDir(). Fake pythons
 * (shell scripts) stand in for the real one, so no torch is needed.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MIN_PEER_GFLOPS, PEER_INSTALL, probePeer, runPeer } from "../../bench/lib/peer.js";
import { tempDir } from "../helpers/tmp.js";

const root = tempDir("lenpred-bench-peer-");
const shared = join(root, "shared");
mkdirSync(join(shared, "bench"), { recursive: true });
writeFileSync(join(shared, "bench", "peer_torch_distilbert.py"), "# stand-in\n");
const env = { ...process.env };
afterEach(() => {
  process.env = { ...env };
});

/** A fake python: `-c PROBE` prints `probe`; running the script appends to a log and prints `result`. */
function fakePython(name: string, probe: string, result = '{"train_step_s_32x40": 1.5, "forward_seq_per_s_40": 20, "single_prompt_ms": 9}', probeExit = 0): { python: string; log: string } {
  const python = join(root, name);
  const log = join(root, `${name}.log`);
  writeFileSync(python, `#!/bin/sh
if [ "$1" = "-c" ]; then echo '${probe}'; exit ${probeExit}; fi
echo "$@" >> '${log}'
echo '${result}'
`);
  chmodSync(python, 0o755);
  return { python, log };
}

function use(python: string): void {
  process.env.LENPRED_SHARED = shared;
  process.env.LENPRED_PEER_PYTHON = python;
}

describe("bench peer probe", () => {
  it("skips a peer on the reference BLAS with one line naming the fix, without running the script", () => {
    const { python, log } = fakePython("ref-blas", '{"gflops": 4.6, "blas": ["/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"]}');
    use(python);
    const lines: string[] = [];
    const run = runPeer(2, (m) => lines.push(m));
    expect(run.result).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/4\.6 GFLOP\/s .*libblas\.so\.3.*reference BLAS/);
    expect(lines[0]).toContain(PEER_INSTALL);
    expect(run.skipped).toMatch(/reference BLAS/);
    expect(existsSync(log)).toBe(false); // the script never ran
  });
  it("runs a fast peer (the script under sharedDir(), with --json --threads N) and returns its result", () => {
    const { python, log } = fakePython("openblas", `{"gflops": ${MIN_PEER_GFLOPS * 6}, "blas": ["libopenblas.so.0"]}`);
    use(python);
    const run = runPeer(3, () => {});
    expect(run.result).toEqual({ train_step_s_32x40: 1.5, forward_seq_per_s_40: 20, single_prompt_ms: 9 });
    expect(readFileSync(log, "utf8").trim()).toBe(`${join(shared, "bench", "peer_torch_distilbert.py")} --json --threads 3`);
  });
  it("says torch is missing and how to install it", () => {
    use(fakePython("no-torch", '{"error": "cannot import torch (No module named torch)"}', undefined, 3).python);
    const p = probePeer(2);
    expect(p.ok).toBe(false);
    expect(!p.ok && p.reason).toMatch(/cannot import torch.*apt-get install -y python3-torch libopenblas0/);
  });
  it("names a python that does not exist", () => {
    use(join(root, "no-such-python"));
    const p = probePeer(2);
    expect(!p.ok && p.reason).toMatch(/cannot run .*no-such-python \(ENOENT\); set LENPRED_PEER_PYTHON/);
  });
  it("finds the script through sharedDir() (LENPRED_SHARED), not a fixed path", () => {
    process.env.LENPRED_SHARED = join(root, "elsewhere");
    process.env.LENPRED_PEER_PYTHON = fakePython("any", '{"gflops": 500}').python;
    const p = probePeer(2);
    expect(!p.ok && p.reason).toMatch(/peer script not found \(.*elsewhere\/bench\/peer_torch_distilbert\.py/);
  });
});
