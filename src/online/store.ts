/**
 * The durable observation store of a state dir:
 *
 *   <state-dir>/lock                       PID of the one writer
 *   <state-dir>/observations/<seq>.jsonl   append-only segments, named by the first seq they hold (zero-padded)
 *   <state-dir>/snapshot.json              learned state up to some seq (written by ./service.ts)
 *
 * `append()` resolves only once its records are on disk (fdatasync). Group commit: appends that arrive while a
 * write+sync is in flight are batched into the next one, so many appends share one fsync. Disk is bounded:
 * a segment rotates at `segmentBytes`, and only the newest `maxSegments` are kept. After a crash, a torn last
 * line (never acknowledged) is cut off when the store is opened. Each line is a `StoredObservation`, which
 * `lenpred prepare` reads as a log record (`{prompt, output_tokens, …}`).
 */
import { createReadStream, existsSync } from "node:fs";
import { mkdir, open, readdir, readFile, stat, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { LenpredError } from "../util/errors.js";
import type { ValidObservation } from "./observation.js";

export interface StoreOptions {
  /** Rotate the active segment past this size (bytes). */
  segmentBytes?: number;
  /** Segments kept; older ones are deleted (the learned state lives on in the snapshot). */
  maxSegments?: number;
  /** fdatasync before acknowledging (default true; false only for benchmarks of the cost). */
  fsync?: boolean;
}

export interface StoredObservation extends ValidObservation {
  seq: number;
  /** Milliseconds since the epoch when it was appended. */
  t: number;
}

export const SEGMENT_DIR = "observations";
export const LOCK_FILE = "lock";
const SEGMENT = /^(\d{12})\.jsonl$/;

interface Waiter { text: string; resolve: () => void; reject: (e: Error) => void }

/** Directories this process holds the lock of (a second open in the same process is refused too). */
const held = new Set<string>();

export class ObservationStore {
  private fh!: FileHandle;
  private segSize = 0;
  private segments: number[] = [];
  private pending: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  private broken: Error | undefined;
  private closed = false;
  private nextSeq = 1;
  readonly counters = { appended: 0, fsyncs: 0, rotations: 0, deletedSegments: 0 };
  private readonly segmentBytes: number;
  private readonly maxSegments: number;
  private readonly fsync: boolean;

  private constructor(readonly dir: string, opts: StoreOptions) {
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    this.maxSegments = opts.maxSegments ?? 16;
    this.fsync = opts.fsync ?? true;
    if (!(this.segmentBytes >= 1024)) throw new LenpredError(`segment size must be ≥ 1024 bytes, got ${this.segmentBytes}`, { field: "segmentBytes" });
    if (!(Number.isInteger(this.maxSegments) && this.maxSegments >= 1)) throw new LenpredError(`maxSegments must be a positive integer, got ${this.maxSegments}`, { field: "maxSegments" });
  }

  /** Open (creating) a state dir's store: take the lock, repair a torn tail, find the next seq. */
  static async open(dir: string, opts: StoreOptions = {}): Promise<ObservationStore> {
    const s = new ObservationStore(dir, opts);
    await mkdir(join(dir, SEGMENT_DIR), { recursive: true });
    await acquireLock(dir);
    try {
      s.segments = await listSegments(dir);
      if (s.segments.length === 0) s.segments.push(1);
      const last = s.segments[s.segments.length - 1]!;
      const path = s.segmentPath(last);
      s.fh = await open(path, "a+");
      const lastLine = await repairTail(s.fh, path);
      s.segSize = (await s.fh.stat()).size;
      s.nextSeq = lastLine ? lastLine.seq + 1 : last;
      await syncDir(join(dir, SEGMENT_DIR));
    } catch (e) {
      await s.fh?.close().catch(() => undefined);
      await releaseLock(dir);
      throw e;
    }
    return s;
  }

  /** The seq the next appended observation will get. */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  private segmentPath(first: number): string {
    return join(this.dir, SEGMENT_DIR, `${String(first).padStart(12, "0")}.jsonl`);
  }

  /** Append observations; resolves with their stored form once they are durable. */
  append(obs: ValidObservation[]): Promise<StoredObservation[]> {
    if (this.closed) return Promise.reject(new LenpredError("the observation store is closed"));
    if (this.broken) return Promise.reject(this.broken);
    const t = Date.now();
    const stored = obs.map((o) => ({ ...o, seq: this.nextSeq++, t }));
    const text = stored.map((r) => JSON.stringify(r) + "\n").join("");
    return new Promise<StoredObservation[]>((resolve, reject) => {
      this.pending.push({ text, resolve: () => resolve(stored), reject });
      this.kick();
    });
  }

  private kick(): void {
    this.flushing ??= this.flushLoop().finally(() => {
      this.flushing = undefined;
      if (this.pending.length) this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0);
      const data = Buffer.from(batch.map((w) => w.text).join(""));
      try {
        if (this.segSize > 0 && this.segSize + data.length > this.segmentBytes) await this.rotate(JSON.parse(batch[0]!.text.slice(0, batch[0]!.text.indexOf("\n"))).seq);
        let off = 0;
        while (off < data.length) off += (await this.fh.write(data, off, data.length - off)).bytesWritten;
        if (this.fsync) await this.fh.datasync();
        this.segSize += data.length;
        this.counters.fsyncs++;
        this.counters.appended += batch.reduce((s, w) => s + (w.text.match(/\n/g)?.length ?? 0), 0);
        for (const w of batch) w.resolve();
      } catch (e) {
        // After a failed write the file's tail is unknown: refuse further appends rather than ack on top of it.
        this.broken = new LenpredError(`observation store write failed: ${(e as Error).message}`, { file: this.dir });
        for (const w of [...batch, ...this.pending.splice(0)]) w.reject(this.broken);
      }
    }
  }

  private async rotate(firstSeq: number): Promise<void> {
    await this.fh.sync();
    await this.fh.close();
    this.fh = await open(this.segmentPath(firstSeq), "a+");
    this.segments.push(firstSeq);
    this.segSize = 0;
    await syncDir(join(this.dir, SEGMENT_DIR));
    this.counters.rotations++;
    while (this.segments.length > this.maxSegments) {
      const old = this.segments.shift()!;
      await unlink(this.segmentPath(old)).catch(() => undefined);
      this.counters.deletedSegments++;
    }
  }

  /** Wait for every pending append. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Stored observations with seq > afterSeq, oldest first (what is on disk now). */
  read(afterSeq = 0): AsyncGenerator<StoredObservation> {
    return readSegments(this.dir, afterSeq);
  }

  /** Flush, close the segment and release the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.fh.close();
    await releaseLock(this.dir);
  }
}

/** Segment first-seqs of a state dir, ascending. */
export async function listSegments(dir: string): Promise<number[]> {
  const names = await readdir(join(dir, SEGMENT_DIR)).catch(() => [] as string[]);
  return names.flatMap((n) => { const m = SEGMENT.exec(n); return m ? [Number(m[1])] : []; }).sort((a, b) => a - b);
}

/** Read the observations of a state dir (no lock needed: segments are append-only). */
export async function* readSegments(dir: string, afterSeq = 0): AsyncGenerator<StoredObservation> {
  for (const first of await listSegments(dir)) {
    const path = join(dir, SEGMENT_DIR, `${String(first).padStart(12, "0")}.jsonl`);
    let size: number;
    try { size = (await stat(path)).size; } catch { continue; } // rotated away meanwhile
    if (size === 0) continue;
    const rl = createInterface({ input: createReadStream(path, { end: size - 1 }), crlfDelay: Infinity });
    let line = 0;
    for await (const text of rl) {
      line++;
      if (!text.trim()) continue;
      let rec: StoredObservation;
      try { rec = JSON.parse(text) as StoredObservation; } catch {
        // Only an unacknowledged torn tail can be malformed; stop at it.
        break;
      }
      if (typeof rec.seq !== "number") throw new LenpredError("stored observation without seq", { file: path, record: line - 1, field: "seq" });
      if (rec.seq > afterSeq) yield rec;
    }
  }
}

/** Cut a torn last line (a write that was never acknowledged); return the last complete record. */
async function repairTail(fh: FileHandle, path: string): Promise<StoredObservation | undefined> {
  const buf = await readFile(fh);
  if (buf.length === 0) return undefined;
  let end = buf.length;
  if (buf[end - 1] !== 0x0a) {
    end = buf.lastIndexOf(0x0a) + 1;
    await fh.truncate(end);
    await fh.sync();
  }
  if (end === 0) return undefined;
  const start = buf.lastIndexOf(0x0a, end - 2) + 1;
  try {
    return JSON.parse(buf.subarray(start, end).toString("utf8")) as StoredObservation;
  } catch {
    throw new LenpredError("last stored observation is malformed (the segment was edited?)", { file: path });
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try { await fh.sync(); } catch { /* some filesystems refuse fsync on a directory */ } finally { await fh.close(); }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One writer per state dir: `lock` holds the writer's PID; a lock whose PID is dead is stale and taken over. */
async function acquireLock(dir: string): Promise<void> {
  const path = join(dir, LOCK_FILE);
  const key = join(dir);
  if (held.has(key)) throw new LenpredError("state dir is already open in this process (one writer per state dir)", { file: dir });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, "wx");
      try { await fh.writeFile(`${process.pid}\n`); await fh.sync(); } finally { await fh.close(); }
      held.add(key);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const text = await readFile(path, "utf8").catch(() => "");
    const pid = Number.parseInt(text, 10);
    // Our own PID here is a leftover of an earlier process that had it (PID reuse): `held` says we do not hold it.
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new LenpredError(`state dir is locked by running process ${pid} (one writer per state dir: stop it, or use another --state-dir)`, { file: path });
    }
    await unlink(path).catch(() => undefined); // stale: its writer is gone
  }
  throw new LenpredError("could not take the state dir lock (another process keeps taking it)", { file: path });
}

async function releaseLock(dir: string): Promise<void> {
  held.delete(join(dir));
  const path = join(dir, LOCK_FILE);
  if (existsSync(path) && Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10) === process.pid) await unlink(path).catch(() => undefined);
}
