/**
 * Child process for the store durability test: opens a state dir and appends observations in concurrent
 * groups forever, printing "ack <seq>" for each one only after its append() resolved (i.e. it is durable).
 * The test SIGKILLs it and checks that every acknowledged seq is on disk. argv: stateDir [segmentBytes].
 */
import { ObservationStore } from "../../src/online/store.js";

const dir = process.argv[2]!;
const segmentBytes = Number(process.argv[3] ?? 64 * 1024 * 1024);
const store = await ObservationStore.open(dir, { segmentBytes, maxSegments: 1000 });
process.stdout.write("ready\n");
let i = 0;
for (;;) {
  const groups = Array.from({ length: 8 }, () => {
    const n = i++;
    return store.append([{ prompt: `prompt ${n} ${"x".repeat(n % 50)}`, output_tokens: n % 700, model: `m${n % 3}` }]).then((recs) => {
      process.stdout.write(recs.map((r) => `ack ${r.seq}\n`).join(""));
    });
  });
  await Promise.all(groups);
}
