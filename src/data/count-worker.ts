/** Worker thread of CountPool: loads the tokenizer once, then counts batches of prompts/outputs. */
import { parentPort, workerData } from "node:worker_threads";
import { loadTokenizer, type HubOptions } from "../tokenizers/index.js";
import type { CountRequest, CountResponse } from "./count-pool.js";

const { spec, hub } = workerData as { spec: string; hub: HubOptions };
const port = parentPort!;
try {
  const tok = await loadTokenizer(spec, hub);
  port.on("message", (req: CountRequest) => {
    const opts = { addSpecialTokens: req.special };
    const res: CountResponse = {
      id: req.id,
      prompts: req.prompts.map((t) => tok.count(t, opts)),
      outputs: req.outputs.map((t) => (t === null ? -1 : tok.count(t, opts))),
    };
    port.postMessage(res);
  });
  port.postMessage({ ready: true });
} catch (e) {
  port.postMessage({ error: (e as Error).message });
}
