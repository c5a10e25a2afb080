/** `lenpred train`'s defaults and choices come from train/options.ts and model/config.ts, stated once. */
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { register } from "../src/commands/train.js";
import { HEAD_KINDS } from "../src/model/config.js";
import { DEFAULTS, MONITORS, validateOptions, type TrainOptions } from "../src/train/options.js";

describe("train options", () => {
  it("the CLI's defaults are DEFAULTS", () => {
    const program = new Command();
    register(program);
    const train = program.commands.find((c) => c.name() === "train")!;
    const defaults = Object.fromEntries(train.options.map((o) => [o.attributeName(), o.defaultValue]));
    for (const [key, value] of Object.entries(DEFAULTS)) {
      expect(defaults[key], key).toEqual(key === "quantiles" ? (value as number[]).join(",") : value);
    }
    expect(train.options.find((o) => o.long === "--head")!.argChoices).toEqual([...HEAD_KINDS]);
    expect(train.options.find((o) => o.long === "--monitor")!.argChoices).toEqual([...MONITORS]);
  });

  it("validation names the allowed heads and monitors", () => {
    const base = { ...DEFAULTS, data: "d", out: "o" } as TrainOptions;
    expect(() => validateOptions({ ...base, head: "poisson" as TrainOptions["head"] })).toThrow("--head must be classification, regression or quantile, got 'poisson'");
    expect(() => validateOptions({ ...base, monitor: "f1" as TrainOptions["monitor"] })).toThrow("--monitor must be val_loss, accuracy or mae, got 'f1'");
  });
});
