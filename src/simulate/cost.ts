/**
 * Step-time model: one engine iteration (ORCA-style selective batching) runs the prefill of newly admitted
 * sequences and one decode step of every running sequence together, so its time is a roofline over the
 * bytes it moves and the FLOPs it does:
 *
 *   bytes = W + kv × (C + D + P)          W weights, kv bytes/token, C context tokens read by the D decode
 *                                          sequences, D + P new KV entries written (P prefill tokens)
 *   flops = 2·N·(D + P) + 4·L·H·C + 2·L·H·S   N params, L layers, H = heads × headDim, S = Σ prompt²
 *   time  = overhead + max(bytes / (BW · bwEff), flops / (peak · flopsEff))
 *
 * 2·N per token is the matmul cost; 4·L·H per context token is QKᵀ plus AV in decode; a causal prefill of
 * p tokens costs 2·L·H·p² for the same two products. Activations and the KV write of prefill are
 * small and folded into the efficiencies. See docs/simulate.md for the constants.
 */
import { kvBytesPerToken, paramCount, type SimProfile } from "./profile.js";

export interface IterationLoad {
  /** Sequences doing one decode step. */
  decodeSeqs: number;
  /** Σ context length (tokens already in KV) over those sequences. */
  decodeContext: number;
  /** Tokens prefilled this iteration (prompts of new sequences, prompt + generated for recomputed ones). */
  prefillTokens: number;
  /** Σ (prefill length)² over prefilled sequences. */
  prefillSquares: number;
}

export interface CostModel {
  iterationTime(load: IterationLoad): number;
  /** Time of a decode-only iteration, for reports: batch b at mean context c. */
  decodeTime(b: number, c: number): number;
}

export function costModel(p: SimProfile): CostModel {
  const w = p.model.weightBytes;
  const kv = kvBytesPerToken(p);
  const flopsPerToken = 2 * paramCount(p);
  const hidden = p.model.layers * p.model.heads * p.model.headDim;
  const bw = p.gpu.hbmBytesPerS * p.eff.bwEfficiency;
  const fl = p.gpu.peakFlops * p.eff.flopsEfficiency;
  const overhead = p.eff.iterOverheadS;
  const iterationTime = (l: IterationLoad): number => {
    const bytes = w + kv * (l.decodeContext + l.decodeSeqs + l.prefillTokens);
    const flops = flopsPerToken * (l.decodeSeqs + l.prefillTokens) + 4 * hidden * l.decodeContext + 2 * hidden * l.prefillSquares;
    return overhead + Math.max(bytes / bw, flops / fl);
  };
  return {
    iterationTime,
    decodeTime: (b, c) => iterationTime({ decodeSeqs: b, decodeContext: b * c, prefillTokens: 0, prefillSquares: 0 }),
  };
}
