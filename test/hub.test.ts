/**
 * The Hugging Face hub client (src/hub/client.ts) against a stand-in hub on 127.0.0.1: huggingface_hub's cache
 * layout, revisions, offline mode and network fallback, resumable and verified downloads, tokens; and the CLI
 * paths that use it (`train --init org/name`, `predict --model org/name`, `hf:` tokenizers).
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { hubCacheDir, hubSnapshot, parseRepoSpec, repoCacheDir } from "../src/hub/client.js";
import { saveModelDir } from "../src/model/checkpoint.js";
import { PRESETS, type DistilBertConfig } from "../src/model/config.js";
import { initParams } from "../src/model/params.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { loadTokenizer } from "../src/tokenizers/index.js";
import { LenpredError } from "../src/util/errors.js";
import { spawn } from "node:child_process";
import { repoRoot } from "../src/util/paths.js";
import { startStandInHub, sha256, gitSha1, type StandInHub, type RepoFiles } from "./helpers/hub-server.js";
import { tinyTokenizerJson, WORDS, writeTinyModel } from "./helpers/predictor-fixtures.js";
import { tempDir } from "./helpers/tmp.js";

/** A prepared directory (lenpred prepare's layout) over the tiny vocabulary. */
function writePrepared(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "scheme.json"), JSON.stringify({ buckets: uniformBuckets(256, 4), tokenizer: "bert-base-uncased", specialTokens: true, label: "test", template: "{instruction}" }));
  for (const [split, n] of [["train", 16], ["val", 4]] as const) {
    writeFileSync(join(dir, `${split}.jsonl`), Array.from({ length: n }, (_, i) => {
      const out = (i % 4) * 64 + 10;
      return JSON.stringify({ id: `${split}-${i}`, prompt: `${["list", "write", "essay", "story"][i % 4]} a poem about the sea`, prompt_tokens: 6, output_tokens: out, output_length_bucket: Math.floor(out / 64) });
    }).join("\n") + "\n");
  }
}

const root = tempDir("lenpred-hub-");
const readDir = (dir: string): RepoFiles => Object.fromEntries(readdirSync(dir, { recursive: true, encoding: "utf8" })
  .filter((f) => lstatSync(join(dir, f)).isFile()).map((f) => [f, readFileSync(join(dir, f))]));

let hub: StandInHub;
let distil: { main: RepoFiles; v1: RepoFiles };
let lenpredModel: RepoFiles;
const tokJson = JSON.stringify(tinyTokenizerJson());

beforeAll(async () => {
  // A micro DistilBERT as `from_pretrained` finds it on the hub (config.json, model.safetensors, tokenizer files).
  const c: DistilBertConfig = { ...PRESETS.tiny!, vocab_size: WORDS.length, dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_position_embeddings: 32, num_labels: 4 };
  writeFileSync(join(root, "tok.json"), tokJson);
  const save = async (name: string, seed: number) => {
    await saveModelDir(join(root, name), { config: c, params: initParams(c, seed), tokenizerJsonPath: join(root, "tok.json"), meta: { buckets: uniformBuckets(256, 4), tokenizer: "bert-base-uncased" }, onnx: false });
    const files = readDir(join(root, name));
    delete files["lenpred.json"]; // a plain HF checkpoint
    return files;
  };
  distil = { main: await save("distil-main", 1), v1: await save("distil-v1", 2) };
  lenpredModel = readDir(writeTinyModel(join(root, "lenpred-model"), uniformBuckets(512, 8), 8).dir);
  hub = await startStandInHub({
    "acme/tiny-distilbert": { revisions: distil },
    "acme/lenpred-tiny": { revisions: { main: lenpredModel } },
    "acme/gated-tok": { revisions: { main: { "tokenizer.json": tokJson } }, token: "sekret" },
    "acme/tok": { revisions: { main: { "tokenizer.json": tokJson, "vocab.txt": WORDS.join("\n") } } },
  });
});
afterAll(() => hub.close());

/** The real CLI, asynchronously: the stand-in hub runs in this process, so spawnSync would deadlock it. */
function runCli(args: string[], opts: { env?: Record<string, string> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), ...args], { cwd: repoRoot, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const files = [{ name: "config.json" }, { name: "model.safetensors" }, { name: "tokenizer.json" }, { name: "special_tokens_map.json", optional: true }];

describe("hub client: huggingface_hub's protocol and cache", () => {
  it("fetches a revision into models--org--name/{blobs,snapshots/<commit>,refs/main}, blobs named by etag", async () => {
    const cacheDir = join(root, "cache1");
    const { dir, commit } = await hubSnapshot("acme/tiny-distilbert", files, { endpoint: hub.endpoint, cacheDir });
    const repoDir = join(cacheDir, "models--acme--tiny-distilbert");
    expect(commit).toBe(hub.commitOf("acme/tiny-distilbert", "main"));
    expect(dir).toBe(join(repoDir, "snapshots", commit));
    expect(readFileSync(join(repoDir, "refs", "main"), "utf8")).toBe(commit);
    // Regular files are blobs named by their git sha1, LFS files by their sha256; snapshots link to them.
    const cfg = Buffer.from(distil.main["config.json"]!);
    const weights = Buffer.from(distil.main["model.safetensors"]!);
    expect(readlinkSync(join(dir, "config.json"))).toBe(`../../blobs/${gitSha1(cfg)}`);
    expect(readlinkSync(join(dir, "model.safetensors"))).toBe(`../../blobs/${sha256(weights)}`);
    expect(readFileSync(join(dir, "model.safetensors")).equals(weights)).toBe(true);
    expect(existsSync(join(dir, "special_tokens_map.json"))).toBe(false); // optional and absent: skipped
    // The LFS download came from the CDN without the token-bearing headers of the hub.
    expect(readdirSync(join(repoDir, "blobs")).sort()).toEqual([gitSha1(cfg), sha256(weights), gitSha1(Buffer.from(tokJson))].sort());

    // Second time: one API call, no file request (the snapshot is complete).
    const before = hub.requests.length;
    expect((await hubSnapshot("acme/tiny-distilbert", files, { endpoint: hub.endpoint, cacheDir })).dir).toBe(dir);
    expect(hub.requests.slice(before).map((r) => r.url)).toEqual(["/api/models/acme/tiny-distilbert/revision/main"]);
  });

  it("resolves revisions (@v1, a commit hash) to their own snapshots", async () => {
    const cacheDir = join(root, "cache2");
    const v1 = await hubSnapshot("acme/tiny-distilbert@v1", files, { endpoint: hub.endpoint, cacheDir });
    expect(v1.commit).toBe(hub.commitOf("acme/tiny-distilbert", "v1"));
    expect(readFileSync(join(v1.dir, "model.safetensors")).equals(Buffer.from(distil.v1["model.safetensors"]!))).toBe(true);
    expect(readFileSync(join(cacheDir, "models--acme--tiny-distilbert", "refs", "v1"), "utf8")).toBe(v1.commit);
    const byHash = await hubSnapshot(`hf:acme/tiny-distilbert@${v1.commit}`, files, { endpoint: hub.endpoint, cacheDir });
    expect(byHash.dir).toBe(v1.dir);
    expect(existsSync(join(cacheDir, "models--acme--tiny-distilbert", "refs", v1.commit))).toBe(false);
  });

  it("HF_HUB_OFFLINE=1 resolves from the cache with no request; an unreachable hub falls back to the cache", async () => {
    const cacheDir = join(root, "cache3");
    const online = await hubSnapshot("acme/tiny-distilbert", files, { endpoint: hub.endpoint, cacheDir });
    const before = hub.requests.length;
    const saved = process.env.HF_HUB_OFFLINE;
    process.env.HF_HUB_OFFLINE = "1";
    try {
      expect((await hubSnapshot("acme/tiny-distilbert", files, { endpoint: hub.endpoint, cacheDir })).dir).toBe(online.dir);
      await expect(hubSnapshot("acme/tiny-distilbert@v1", files, { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(/HF_HUB_OFFLINE is set, and the cache .* lacks/);
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_OFFLINE; else process.env.HF_HUB_OFFLINE = saved;
    }
    expect(hub.requests.length).toBe(before);
    const down = { endpoint: "http://127.0.0.1:1", cacheDir };
    expect((await hubSnapshot("acme/tiny-distilbert", files, down)).dir).toBe(online.dir);
    await expect(hubSnapshot("acme/other", files, down)).rejects.toThrow(/cannot reach .*lacks/);
  });

  it("resumes an interrupted download with Range, and never leaves a partial blob in the snapshot", async () => {
    const cacheDir = join(root, "cache4");
    const weights = Buffer.from(distil.main["model.safetensors"]!);
    const digest = sha256(weights);
    hub.truncateOnce(digest);
    const start = hub.requests.length;
    await expect(hubSnapshot("acme/tiny-distilbert", files, { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(/interrupted.*resume|cannot reach/);
    const blobs = join(cacheDir, "models--acme--tiny-distilbert", "blobs");
    const partial = readFileSync(join(blobs, `${digest}.incomplete`));
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(weights.length);
    expect(existsSync(join(blobs, digest))).toBe(false);
    expect(existsSync(join(cacheDir, "models--acme--tiny-distilbert", "snapshots", hub.commitOf("acme/tiny-distilbert", "main"), "model.safetensors"))).toBe(false);
    const { dir } = await hubSnapshot("acme/tiny-distilbert", files, { endpoint: hub.endpoint, cacheDir });
    const cdn = hub.requests.slice(start).filter((r) => r.url === `/cdn/${digest}`);
    expect(cdn.map((r) => r.headers.range)).toEqual([undefined, `bytes=${partial.length}-`]);
    expect(cdn.every((r) => r.headers.authorization === undefined)).toBe(true);
    expect(readFileSync(join(dir, "model.safetensors")).equals(weights)).toBe(true);
    expect(existsSync(join(blobs, `${digest}.incomplete`))).toBe(false);
  });

  it("two concurrent fetches of the same files download each blob once (blob lock) and both succeed", async () => {
    const cacheDir = join(root, "cache-concurrent");
    const digest = sha256(Buffer.from(distil.main["model.safetensors"]!));
    const start = hub.requests.length;
    const [a, b] = await Promise.all([0, 1].map(() => hubSnapshot("acme/tiny-distilbert", files, { endpoint: hub.endpoint, cacheDir })));
    expect(a!.dir).toBe(b!.dir);
    expect(hub.requests.slice(start).filter((r) => r.url === `/cdn/${digest}`)).toHaveLength(1);
    expect(readFileSync(join(a!.dir, "model.safetensors")).equals(Buffer.from(distil.main["model.safetensors"]!))).toBe(true);
    expect(readdirSync(join(cacheDir, "models--acme--tiny-distilbert", "blobs")).filter((f) => f.endsWith(".lock") || f.endsWith(".incomplete"))).toEqual([]);
  });

  it("rejects content that does not match its sha256 etag, keeping nothing", async () => {
    const cacheDir = join(root, "cache5");
    const digest = sha256(Buffer.from(distil.v1["model.safetensors"]!));
    hub.corruptOnce(digest);
    await expect(hubSnapshot("acme/tiny-distilbert@v1", files, { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(/corrupt: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}/);
    const blobs = join(cacheDir, "models--acme--tiny-distilbert", "blobs");
    expect(readdirSync(blobs).filter((f) => f.startsWith(digest))).toEqual([]);
    // The next attempt downloads it afresh and gets the right bytes.
    const { dir } = await hubSnapshot("acme/tiny-distilbert@v1", files, { endpoint: hub.endpoint, cacheDir });
    expect(readFileSync(join(dir, "model.safetensors")).equals(Buffer.from(distil.v1["model.safetensors"]!))).toBe(true);
  });

  it("sends HF_TOKEN to the hub for gated repositories and explains a 401", async () => {
    const cacheDir = join(root, "cache6");
    await expect(hubSnapshot("acme/gated-tok", [{ name: "tokenizer.json" }], { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(/HTTP 401 \(gated or private repository: set HF_TOKEN\)/);
    const saved = process.env.HF_TOKEN;
    process.env.HF_TOKEN = "sekret";
    try {
      const { dir } = await hubSnapshot("acme/gated-tok", [{ name: "tokenizer.json" }], { endpoint: hub.endpoint, cacheDir });
      expect(readFileSync(join(dir, "tokenizer.json"), "utf8")).toBe(tokJson);
    } finally {
      if (saved === undefined) delete process.env.HF_TOKEN; else process.env.HF_TOKEN = saved;
    }
    await expect(hubSnapshot("acme/nope", [{ name: "x" }], { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(/HTTP 404 \(no such repository\)/);
    await expect(hubSnapshot("acme/tok@v9", [{ name: "x" }], { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(/no revision 'v9'/);
    await expect(hubSnapshot("acme/tok", [{ name: "config.json" }], { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(/has no config\.json/);
  });

  it("places the cache by HF_HUB_CACHE, else HF_HOME/hub; rejects ids that could escape it", () => {
    const saved = { c: process.env.HF_HUB_CACHE, h: process.env.HF_HOME };
    try {
      delete process.env.HF_HUB_CACHE;
      process.env.HF_HOME = "/x/hf";
      expect(hubCacheDir()).toBe("/x/hf/hub");
      process.env.HF_HUB_CACHE = "/y/cache";
      expect(repoCacheDir("org/name")).toBe("/y/cache/models--org--name");
    } finally {
      for (const [k, v] of [["HF_HUB_CACHE", saved.c], ["HF_HOME", saved.h]] as const) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
    for (const bad of ["../etc", "a/../../b", "a/b/c", "/abs", "a/b@../x", "", "a/b@x/../../y"]) expect(() => parseRepoSpec(bad), bad).toThrow(LenpredError);
    expect(parseRepoSpec("hf:org/name@rev-1")).toEqual({ repo: "org/name", revision: "rev-1" });
    expect(parseRepoSpec("distilbert-base-uncased")).toEqual({ repo: "distilbert-base-uncased", revision: "main" });
  });
});

describe("hub ids in lenpred", () => {
  it("hf: tokenizers come through the same client and cache", async () => {
    const cacheDir = join(root, "cache7");
    const tok = await loadTokenizer("hf:acme/tok", { endpoint: hub.endpoint, cacheDir });
    expect(tok.encode("write a poem")).toEqual([2, 5, 6, 7, 3]);
    const snap = join(cacheDir, "models--acme--tok", "snapshots", hub.commitOf("acme/tok", "main"));
    expect(readdirSync(snap).sort()).toEqual(["tokenizer.json", "vocab.txt"]);
  });

  it("LengthPredictor.load(org/name) and lenpred predict --model org/name fetch a lenpred model repository", async () => {
    const hfHome = join(root, "hf-home-predict");
    const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: hfHome };
    const local = await LengthPredictor.load(join(root, "lenpred-model"));
    const want = await local.predict("write a poem about the sea");
    await local.dispose();
    const remote = await LengthPredictor.load("acme/lenpred-tiny", { hub: { endpoint: hub.endpoint, cacheDir: join(hfHome, "hub") } });
    expect(await remote.predict("write a poem about the sea")).toEqual(want);
    await remote.dispose();
    for (const spec of ["acme/lenpred-tiny", "hf:acme/lenpred-tiny@main"]) {
      const r = await runCli(["predict", "--model", spec, "write a poem about the sea"], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ bucket: want.bucket, upperBound: want.upperBound });
    }
    // A mistyped local path under an existing directory stays a path error; an unknown id says what was tried.
    const typo = await runCli(["predict", "--model", "models/alpaca-s3x", "x"], { env }); // cwd: the repository, which has models/
    expect(typo.stderr).toMatch(/not a lenpred model directory/);
    const unknown = await runCli(["predict", "--model", "acme/none", "x"], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/'acme\/none' is no model directory or bundled model \(alpaca-s3, vicuna-7b\), and as a Hugging Face hub id: .*HTTP 404 \(no such repository\)/);
    const offline = await runCli(["predict", "--model", "acme/lenpred-tiny", "write a poem"], { env: { ...env, HF_ENDPOINT: "http://127.0.0.1:1", HF_HUB_OFFLINE: "1" } });
    expect(offline.code, offline.stderr).toBe(0);
  });

  it("lenpred train --init org/name trains from the hub checkpoint (and its tokenizer), cached like from_pretrained", async () => {
    const data = join(root, "data");
    mkdirSync(data, { recursive: true });
    writePrepared(data);
    const hfHome = join(root, "hf-home-train");
    const out = join(root, "from-hub");
    const r = await runCli(["train", "--data", data, "--init", "acme/tiny-distilbert@v1", "--out", out, "--epochs", "1", "--batch-size", "4", "--max-length", "16", "--lr", "0.001", "--no-progress"],
      { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: hfHome } });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/\(pretrained\): 1 layers × dim 16/);
    const snap = join(hfHome, "hub", "models--acme--tiny-distilbert", "snapshots", hub.commitOf("acme/tiny-distilbert", "v1"));
    expect(readdirSync(snap)).toEqual(expect.arrayContaining(["config.json", "model.safetensors", "tokenizer.json"]));
    expect(readFileSync(join(out, "tokenizer.json"), "utf8")).toBe(tokJson);
    expect(readFileSync(join(out, "README.md"), "utf8")).toContain("--init acme/tiny-distilbert@v1");
    const bad = await runCli(["train", "--data", data, "--init", "acme/nope", "--out", join(root, "nope"), "--epochs", "1"], { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: hfHome } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/acme\/nope@main: .*HTTP 404 \(no such repository\)/);
  });
});
