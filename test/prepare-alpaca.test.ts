/** Integration: the reference recipe on the real Alpaca data in ../shared (skipped when absent). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { prepareDataset } from "../src/data/prepare.js";
import { loadTokenizer } from "../src/tokenizers/index.js";
import { sharedDataFile } from "../src/util/paths.js";
import { tempDir } from "./helpers/tmp.js";
import { loadVocab, wordpieceIds } from "./helpers/wordpiece-oracle.js";

const alpaca = sharedDataFile("alpaca/alpaca_data.json");
const lengths = sharedDataFile("vicuna-7b-lengths/alpaca-train-10k-length.json");
const why = "needs ../shared/data/alpaca/alpaca_data.json (and the Vicuna length file)";

describe.skipIf(!alpaca)(`prepare on the real Alpaca data (${alpaca ? "present" : `skipped: ${why}`})`, () => {
  const dir = tempDir();

  it("reproduces the reference histogram 47378/4135/406/59/20/2/1/1 (majority 91.1 %)", async () => {
    const { stats } = await prepareDataset({ input: alpaca!, out: join(dir, "ref") });
    expect(stats.counts).toMatchObject({ examples: 52002, train: 46802, val: 5200 });
    expect(stats.histogram.all).toEqual([47378, 4135, 406, 59, 20, 2, 1, 1]);
    expect(stats.majority.bucket).toBe(0);
    expect(stats.majority.accuracy).toBeCloseTo(47378 / 52002, 10);
    expect(stats.outputTokens.all).toMatchObject({ p50: 42, p90: 123, p99: 252, max: 990 });
  });

  it("the Vicuna join (label max) keeps the 10k joined records", async () => {
    const { stats } = await prepareDataset({ input: alpaca!, lengths: lengths!, label: "max", out: join(dir, "vicuna") });
    // Independent recount straight from the length file.
    const rows = JSON.parse(readFileSync(lengths!, "utf8")) as Array<Record<string, number | string>>;
    const hist = new Array(8).fill(0);
    for (const r of rows) {
      const y = Math.max(...Object.keys(r).filter((k) => k.startsWith("L_t")).map((k) => r[k] as number));
      hist[Math.min(Math.floor(y / 128), 7)]++;
    }
    expect(stats.counts).toMatchObject({ examples: 10000, lengthRowsUnmatched: 0, train: 9000, val: 1000 });
    expect(stats.histogram.all).toEqual(hist);
  });

  it("the library agrees with the vocab.txt WordPiece oracle on 3000 real answers", async () => {
    const tok = await loadTokenizer("bert-base-uncased");
    const vocab = loadVocab(sharedDataFile("bert-base-uncased/vocab.txt") ?? join("assets", "tokenizers", "bert-base-uncased", "vocab.txt"));
    const data = JSON.parse(readFileSync(alpaca!, "utf8")) as Array<{ output: string }>;
    let mismatches = 0;
    for (let i = 0; i < data.length; i += 17) if (JSON.stringify(tok.encode(data[i]!.output)) !== JSON.stringify(wordpieceIds(data[i]!.output, vocab))) mismatches++;
    expect(mismatches).toBe(0);
  });
});
