/**
 * Fuzzer for `lenpred serve`: malformed and random requests (bad JSON, wrong types, huge bodies, odd
 * unicode, deep nesting, wrong methods/paths/content types, broken HTTP on raw sockets) plus some valid
 * ones. It records every status; the contract is "no 5xx other than deliberate 503s" and the server
 * still answers afterwards. Used by test/serve.test.ts (1,000 requests) and bench/serve/serve.ts (10,000).
 */
import http from "node:http";
import net from "node:net";
import { createRng, type Rng } from "../../src/util/rng.js";

export interface FuzzOptions {
  /** http://host:port */
  baseUrl: string;
  requests: number;
  seed?: number | string;
  concurrency?: number;
  /** The server's body limit; "huge" bodies are made a little larger than this. */
  bodyLimit: number;
  /** The server's prompt-length limit, to make over-long prompts. */
  maxPromptChars?: number;
  /** Called after every request with the number done so far. */
  onProgress?: (done: number) => void;
}

export interface FuzzReport {
  requests: number;
  /** Status code → count ("none" = connection closed without a status line, "error:<code>" = client-side error). */
  statuses: Record<string, number>;
  /** Responses with a 5xx status other than 503. */
  unexpected5xx: number;
  /** Up to 5 descriptions of requests that got an unexpected 5xx. */
  examples: string[];
  byKind: Record<string, number>;
}

interface HttpCase { kind: string; method: string; path: string; headers: Record<string, string>; body?: Buffer }
interface RawCase { kind: string; raw: Buffer }
type FuzzCase = HttpCase | RawCase;

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;

const CHUNKS = [
  "a", "Write a poem", " ", "\n", "\t", "\u0000", "\u001f", "é", "ß", "中文", "日本語", "🙂", "👩‍💻", "\u200b", "\u202e",
  "\ud800", "\udfff", "\uffff", "\"", "\\", "{", "}", "[", "]", "</script>", "' OR 1=1 --", "%s%n", "${x}", "__proto__",
];

function randString(rng: Rng, maxLen: number): string {
  let s = "";
  const n = rng.int(maxLen + 1);
  while (s.length < n) s += pick(rng, CHUNKS);
  return s;
}

function randNumber(rng: Rng): number {
  return pick(rng, [0, -0, 1, -1, 0.5, 0.9, 1.0000001, 1e-300, 1e308, -1e308, 2 ** 53 + 1, rng.next(), rng.int(1000) - 500, 3.14]);
}

function randValue(rng: Rng, depth: number): unknown {
  const r = rng.int(depth > 0 ? 7 : 4);
  switch (r) {
    case 0: return randString(rng, 40);
    case 1: return randNumber(rng);
    case 2: return pick(rng, [true, false, null]);
    case 3: return pick(rng, ["", "user", "text", "prompt", "0.5"]);
    case 4: return Array.from({ length: rng.int(5) }, () => randValue(rng, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(5); i > 0; i--) o[pick(rng, ["prompt", "prompts", "messages", "role", "content", "type", "text", "quantile", "model", randString(rng, 8)])] = randValue(rng, depth - 1);
      return o;
    }
  }
}

const ROLES = ["system", "developer", "user", "assistant", "tool", "function", "User", "bot", ""];

function randMessage(rng: Rng): unknown {
  if (rng.next() < 0.1) return randValue(rng, 2);
  const m: Record<string, unknown> = {};
  if (rng.next() < 0.95) m.role = rng.next() < 0.8 ? pick(rng, ROLES) : randValue(rng, 1);
  const c = rng.int(5);
  if (c === 0) m.content = randString(rng, 60);
  else if (c === 1) m.content = Array.from({ length: rng.int(4) }, () => (rng.next() < 0.7 ? { type: pick(rng, ["text", "image_url", "x"]), text: randString(rng, 30) } : randValue(rng, 1)));
  else if (c === 2) m.content = null;
  else if (c === 3) m.content = randValue(rng, 2);
  return m;
}

/** A body that is valid JSON and often close to valid input. */
function randBody(rng: Rng, maxPromptChars: number): unknown {
  const body: Record<string, unknown> = {};
  const shape = rng.int(6);
  if (shape === 0) body.prompt = rng.next() < 0.7 ? randString(rng, 200) : randValue(rng, 2);
  else if (shape === 1) body.prompts = rng.next() < 0.7 ? Array.from({ length: rng.int(8) }, () => randString(rng, 80)) : randValue(rng, 3);
  else if (shape === 2) body.messages = Array.from({ length: rng.int(4) }, () => randMessage(rng));
  else if (shape === 3) body.prompt = "x".repeat(maxPromptChars + 1 + rng.int(10)); // over the length limit
  else if (shape === 4) Object.assign(body, { prompt: randString(rng, 50), prompts: [randString(rng, 10)] });
  else return randValue(rng, 4);
  if (rng.next() < 0.3) body.quantile = rng.next() < 0.6 ? randNumber(rng) : randValue(rng, 1);
  if (rng.next() < 0.2) body.model = randValue(rng, 1);
  if (rng.next() < 0.2) body[randString(rng, 10)] = randValue(rng, 2);
  return body;
}

const PATHS = ["/v1/predict", "/v1/predict", "/v1/predict/", "/v1/model", "/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/v1", "/v2/predict",
  "/v1/predict?x=1", "/v1/predict?quantile=abc", "/%zz", "/v1/%E0%A4%A", "/..%2f..%2fetc/passwd", "//v1//predict", "/" + "a".repeat(5000), "/v1/predict#frag", "/%F0%9F%99%82"];
const METHODS = ["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND"];
const TYPES = ["application/json", "application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x", "application/json-patch+json", "application/jsonx", "APPLICATION/JSON", "*/*", ""];

function httpCase(rng: Rng, o: Required<Pick<FuzzOptions, "bodyLimit" | "maxPromptChars">>): HttpCase {
  const r = rng.next();
  const json = { "content-type": "application/json" };
  const post = (kind: string, body: string | Buffer, headers: Record<string, string> = json): HttpCase =>
    ({ kind, method: "POST", path: "/v1/predict", headers, body: Buffer.isBuffer(body) ? body : Buffer.from(body) });
  if (r < 0.35) return post("json-body", JSON.stringify(randBody(rng, o.maxPromptChars)));
  if (r < 0.45) {
    const text = JSON.stringify(randBody(rng, o.maxPromptChars));
    return post("broken-json", text.slice(0, rng.int(text.length)) + pick(rng, ["", "}", ",", "\u0000", "'", "NaN", "]]"]));
  }
  if (r < 0.5) return post("random-bytes", Buffer.from(Array.from({ length: rng.int(300) }, () => rng.int(256))));
  if (r < 0.55) {
    const d = 1000 + rng.int(50_000);
    return post("deep-nesting", rng.next() < 0.5 ? "[".repeat(d) + "]".repeat(d) : `{"prompt":"x","extra":${"{\"a\":".repeat(d)}1${"}".repeat(d)}}`);
  }
  if (r < 0.58) return post("huge-body", `{"prompt":"${"y".repeat(o.bodyLimit + rng.int(o.bodyLimit))}"}`);
  if (r < 0.66) return post("content-type", JSON.stringify({ prompt: "hi" }), pick(rng, TYPES) === "" ? {} : { "content-type": pick(rng, TYPES) });
  if (r < 0.8) {
    const method = pick(rng, METHODS);
    const hasBody = method !== "GET" && method !== "HEAD" && rng.next() < 0.7;
    return { kind: "method-path", method, path: pick(rng, PATHS), headers: hasBody ? json : {}, body: hasBody ? Buffer.from(JSON.stringify(randBody(rng, o.maxPromptChars))) : undefined };
  }
  if (r < 0.85) {
    // well-formed JSON with a lying charset or odd headers
    return post("headers", JSON.stringify({ prompt: randString(rng, 30) }), { "content-type": "application/json; charset=" + pick(rng, ["latin1", "utf-16", "x"]), "x-junk": randString(rng, 10).replace(/[^\x20-\x7e]/g, "") });
  }
  return post("valid", JSON.stringify(pick(rng, [{ prompt: randString(rng, 100) }, { prompts: [randString(rng, 20), "Explain Rust"] },
    { messages: [{ role: "user", content: "Summarise: " + randString(rng, 50) }] }, { prompt: "Write an essay", quantile: 0.9 }])));
}

function rawCase(rng: Rng): RawCase {
  const raws = [
    "GARBAGE\r\n\r\n",
    "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
    "GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n",
    `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"h".repeat(20_000)}\r\n\r\n`,
    "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"prompt\":\"x\"}",
    "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}",
    "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
    "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
    "\u0000\u0001\u0002\r\n\r\n",
    "GET /\u00f0\u009f\u0099\u0082 HTTP/1.1\r\nHost: x\r\n\r\n",
  ];
  const r = rng.next();
  if (r < 0.2) return { kind: "raw-bytes", raw: Buffer.from(Array.from({ length: 1 + rng.int(200) }, () => rng.int(256))) };
  return { kind: "raw-http", raw: Buffer.from(pick(rng, raws), "latin1") };
}

function describe(c: FuzzCase): string {
  if ("raw" in c) return `${c.kind}: ${JSON.stringify(c.raw.subarray(0, 120).toString("latin1"))}`;
  return `${c.kind}: ${c.method} ${c.path.slice(0, 80)} ${JSON.stringify(c.headers)} ${c.body ? JSON.stringify(c.body.subarray(0, 120).toString("utf8")) : ""}`;
}

function sendHttp(url: URL, c: HttpCase, agent: http.Agent): Promise<string> {
  return new Promise((resolve) => {
    let req: http.ClientRequest;
    try {
      req = http.request({ host: url.hostname, port: url.port, method: c.method, path: c.path, agent, timeout: 30_000,
        headers: { ...c.headers, ...(c.body ? { "content-length": String(c.body.length) } : {}) } }, (res) => {
        res.resume();
        res.on("end", () => resolve(String(res.statusCode)));
        res.on("error", () => resolve(String(res.statusCode)));
      });
    } catch (e) {
      resolve(`error:${(e as NodeJS.ErrnoException).code ?? "client"}`);
      return;
    }
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.on("error", (e: NodeJS.ErrnoException) => resolve(`error:${e.code ?? "unknown"}`));
    req.end(c.body);
  });
}

function sendRaw(url: URL, c: RawCase): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: url.hostname, port: Number(url.port) });
    let data = "";
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      sock.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      resolve(m ? m[1]! : "none");
    };
    sock.setTimeout(5000, finish);
    sock.on("data", (d) => {
      data += d.toString("latin1");
    });
    sock.on("error", finish);
    sock.on("close", finish);
    sock.on("connect", () => sock.end(c.raw));
  });
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const rng = createRng(opts.seed ?? 1);
  const url = new URL(opts.baseUrl);
  const limits = { bodyLimit: opts.bodyLimit, maxPromptChars: opts.maxPromptChars ?? 32_768 };
  const concurrency = opts.concurrency ?? 16;
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const report: FuzzReport = { requests: 0, statuses: {}, unexpected5xx: 0, examples: [], byKind: {} };
  // Cases are drawn up front so the sequence depends only on the seed, not on response timing.
  const cases: FuzzCase[] = Array.from({ length: opts.requests }, () => (rng.next() < 0.05 ? rawCase(rng) : httpCase(rng, limits)));
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      const status = "raw" in c ? await sendRaw(url, c) : await sendHttp(url, c, agent);
      report.requests++;
      report.statuses[status] = (report.statuses[status] ?? 0) + 1;
      report.byKind[c.kind] = (report.byKind[c.kind] ?? 0) + 1;
      opts.onProgress?.(report.requests);
      if (/^5\d\d$/.test(status) && status !== "503") {
        report.unexpected5xx++;
        if (report.examples.length < 5) report.examples.push(`${status} ← ${describe(c)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return report;
}
