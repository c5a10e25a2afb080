import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readJsonFile } from "../src/util/json-file.js";
import { tempDir } from "./helpers/tmp.js";

describe("readJsonFile", () => {
  const dir = tempDir();
  it("parses a JSON file", async () => {
    writeFileSync(join(dir, "ok.json"), '{"a": [1, 2]}');
    expect(await readJsonFile(join(dir, "ok.json"))).toEqual({ a: [1, 2] });
  });
  it("names the file when it is missing, unreadable or not JSON, with the caller's wording", async () => {
    const missing = join(dir, "nope.json");
    await expect(readJsonFile(missing)).rejects.toThrow(`${missing}: file not found`);
    await expect(readJsonFile(missing, { missing: "no scheme here" })).rejects.toThrow(`${missing}: no scheme here`);
    const bad = join(dir, "bad.json");
    writeFileSync(bad, '{"a": ');
    await expect(readJsonFile(bad)).rejects.toThrow(new RegExp(`^${bad}: malformed JSON \\(`));
    await expect(readJsonFile(bad, { malformed: (d) => `broken (${d.length > 0})` })).rejects.toThrow(`${bad}: broken (true)`);
    const sub = join(dir, "a-directory");
    mkdirSync(sub);
    await expect(readJsonFile(sub)).rejects.toThrow(`${sub}: cannot read (EISDIR)`);
  });
});
