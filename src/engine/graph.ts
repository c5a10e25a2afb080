/**
 * The graph builder: symbolic tensors (dtype + shape with named dynamic axes) and the ONNX nodes that produce
 * them. Op functions (ops.ts) append nodes; autodiff (autodiff.ts) appends more; `toOnnx` serializes the part
 * of the graph the requested outputs depend on.
 */
import { LenpredError } from "../util/errors.js";
import { Msg, ONNX_DTYPE } from "./proto.js";

export type DType = keyof typeof ONNX_DTYPE;
/** A dimension: a number, or a name for a dynamic axis ("batch", "seq", or a product like "batch*seq"). */
export type Dim = number | string;
export type Shape = readonly Dim[];

export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint32Array | Uint8Array | Int8Array;

/** Host data for an initializer or a constant. */
export interface ConstData {
  dtype: DType;
  shape: readonly number[];
  data: TypedData;
}

export type Attr =
  | { kind: "int"; v: number }
  | { kind: "float"; v: number }
  | { kind: "string"; v: string }
  | { kind: "ints"; v: readonly number[] }
  | { kind: "floats"; v: readonly number[] }
  | { kind: "tensor"; v: ConstData };

/** Attribute constructors: `{ axis: attr.i(1), epsilon: attr.f(1e-12) }`. */
export const attr = {
  i: (v: number): Attr => ({ kind: "int", v }),
  f: (v: number): Attr => ({ kind: "float", v }),
  s: (v: string): Attr => ({ kind: "string", v }),
  ints: (v: readonly number[]): Attr => ({ kind: "ints", v }),
  floats: (v: readonly number[]): Attr => ({ kind: "floats", v }),
  t: (v: ConstData): Attr => ({ kind: "tensor", v }),
};

export interface Node {
  readonly id: number;
  readonly op: string;
  readonly domain: string;
  /** `undefined` marks an omitted optional input. */
  readonly inputs: readonly (Tensor | undefined)[];
  readonly outputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, Attr>>;
}

/** A symbolic tensor: a named value in one graph. */
export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    /** The node that computes it; undefined for graph inputs and initializers. */
    readonly producer?: Node,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}[${this.shape.join(", ")}]`;
  }
}

export interface Initializer {
  tensor: Tensor;
  data: ConstData;
}

export interface ToOnnxOptions {
  /** Outputs by name; defaults to those registered with `graph.output`. */
  outputs?: Record<string, Tensor>;
  /**
   * Graph inputs to declare; defaults to every `graph.input`. Inputs the outputs do not need are still declared.
   * An initializer listed here becomes an input (its data is not embedded), e.g. parameters fed each step.
   */
  inputs?: readonly Tensor[];
  opset?: number;
  producer?: string;
  /** ModelProto.producer_version (e.g. the package version). */
  producerVersion?: string;
  /** ModelProto.ir_version; default 8 for opset ≤ 17 (ONNX 1.12, what opset-17 checkers accept), else 9. */
  irVersion?: number;
}

/** Default ONNX opset: 20 has Gelu, LayerNormalization (17), ReduceMean with axes-as-input (18). */
export const DEFAULT_OPSET = 20;

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  readonly initializers = new Map<string, Initializer>();
  readonly outputs = new Map<string, Tensor>();
  private names = new Set<string>();
  private counter = 0;
  private scalarCache = new Map<string, Tensor>();

  constructor(readonly name = "lenpred") {}

  /** A fresh unique value name, with `hint` as its prefix. */
  uniqueName(hint = "t"): string {
    let n = hint;
    while (this.names.has(n)) n = `${hint}_${this.counter++}`;
    this.names.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new LenpredError(`duplicate tensor name '${name}' in graph '${this.name}'`);
    this.names.add(name);
    return name;
  }

  /** Declare a graph input; string dims are dynamic axes named in the ONNX model. */
  input(name: string, dtype: DType, shape: Shape): Tensor {
    const t = new Tensor(this, this.claim(name), dtype, [...shape]);
    this.inputs.push(t);
    return t;
  }

  /** A named constant stored in the model (weights for inference exports, small constants). */
  initializer(name: string, data: ConstData): Tensor {
    return this.addInitializer(this.claim(name), data);
  }

  private addInitializer(name: string, data: ConstData): Tensor {
    checkData(data, name);
    const t = new Tensor(this, name, data.dtype, [...data.shape]);
    this.initializers.set(t.name, { tensor: t, data });
    return t;
  }

  /** An anonymous constant; scalars and short int vectors are shared. */
  constant(data: ConstData): Tensor {
    const small = data.data.length <= 16;
    const key = small ? `${data.dtype}|${data.shape.join(",")}|${Array.from(data.data as ArrayLike<number | bigint>).join(",")}` : "";
    if (small) {
      const hit = this.scalarCache.get(key);
      if (hit) return hit;
    }
    const t = this.addInitializer(this.uniqueName("const"), data);
    if (small) this.scalarCache.set(key, t);
    return t;
  }

  /** Append a node; `outs` gives each output's dtype and shape (inferred by the op function). */
  node(op: string, inputs: readonly (Tensor | undefined)[], outs: readonly { dtype: DType; shape: Shape; name?: string }[], attrs: Record<string, Attr> = {}, domain = ""): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) throw new LenpredError(`${op}: input ${t.name} belongs to another graph`);
    }
    const outputs: Tensor[] = [];
    const node: Node = { id: this.nodes.length, op, domain, inputs: [...inputs], outputs, attrs };
    for (const o of outs) outputs.push(new Tensor(this, o.name ? this.claim(o.name) : this.uniqueName(op.toLowerCase()), o.dtype, [...o.shape], node));
    this.nodes.push(node);
    return outputs;
  }

  /** Register a graph output under `name`. */
  output(name: string, t: Tensor): Tensor {
    if (t.graph !== this) throw new LenpredError(`output ${name}: tensor belongs to another graph`);
    this.outputs.set(name, t);
    return t;
  }

  /** Serialize to an ONNX ModelProto, keeping only nodes and initializers the outputs depend on. */
  toOnnx(opts: ToOnnxOptions = {}): Uint8Array {
    const outputs = opts.outputs ?? Object.fromEntries(this.outputs);
    const outNames = Object.keys(outputs);
    if (outNames.length === 0) throw new LenpredError(`graph '${this.name}' has no outputs`);
    const inputs = opts.inputs ?? this.inputs;
    const inputSet = new Set(inputs.map((t) => t.name));

    // Reverse reachability from the outputs.
    const needed = new Set<number>();
    const usedValues = new Set<string>();
    const stack: Tensor[] = Object.values(outputs);
    while (stack.length) {
      const t = stack.pop()!;
      if (usedValues.has(t.name)) continue;
      usedValues.add(t.name);
      if (t.producer && !needed.has(t.producer.id)) {
        needed.add(t.producer.id);
        for (const i of t.producer.inputs) if (i) stack.push(i);
      } else if (!t.producer && !inputSet.has(t.name) && !this.initializers.has(t.name)) {
        throw new LenpredError(`graph '${this.name}': output depends on input '${t.name}', which is not declared`);
      }
    }

    // Outputs take their names in place (the producing node writes the output name directly: no copy);
    // inputs, initializers and a value requested twice get an Identity node instead.
    const alias = new Map<string, string>();
    const identities: [string, string][] = [];
    const renamed: Tensor[] = [];
    for (const name of outNames) {
      const t = outputs[name]!;
      renamed.push(t.name === name ? t : new Tensor(this, name, t.dtype, t.shape));
      if (t.name === name) continue;
      if (usedValues.has(name)) throw new LenpredError(`output name '${name}' clashes with a value in graph '${this.name}'`);
      if (t.producer && !alias.has(t.name) && !outNames.includes(t.name)) alias.set(t.name, name);
      else identities.push([alias.get(t.name) ?? t.name, name]);
    }
    const g = new Msg();
    for (const n of this.nodes) if (needed.has(n.id)) g.msg(1, encodeNode(n, alias));
    for (const [from, to] of identities) g.msg(1, new Msg().str(1, from).str(2, to).str(3, `rename_${to}`).str(4, "Identity"));
    g.str(2, this.name);
    for (const [name, init] of this.initializers) {
      if (usedValues.has(name) && !inputSet.has(name)) g.msg(5, encodeTensor(name, init.data));
    }
    for (const t of inputs) g.msg(11, encodeValueInfo(t));
    for (const t of renamed) g.msg(12, encodeValueInfo(t));

    const opset = opts.opset ?? DEFAULT_OPSET;
    const model = new Msg()
      .int(1, opts.irVersion ?? (opset <= 17 ? 8 : 9)) // ir_version 9: opset 20 era; 8: opset 17 (ONNX 1.12)
      .str(2, opts.producer ?? "lenpred-engine");
    if (opts.producerVersion) model.str(3, opts.producerVersion);
    model
      .msg(7, g)
      .msg(8, new Msg().str(1, "").int(2, opset));
    if (this.nodes.some((n) => needed.has(n.id) && n.domain === "com.microsoft")) model.msg(8, new Msg().str(1, "com.microsoft").int(2, 1));
    return model.finish();
  }
}

function checkData(d: ConstData, name: string): void {
  const n = d.shape.reduce((a, b) => a * b, 1);
  if (n !== d.data.length) throw new LenpredError(`initializer '${name}': shape [${d.shape.join(", ")}] needs ${n} values, got ${d.data.length}`);
}

function encodeTensor(name: string, d: ConstData): Msg {
  const bytes = new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength);
  return new Msg().ints(1, d.shape).int(2, ONNX_DTYPE[d.dtype]).str(8, name).raw(9, bytes);
}

function encodeValueInfo(t: Tensor): Msg {
  const shape = new Msg();
  for (const d of t.shape) shape.msg(1, typeof d === "number" && d >= 0 ? new Msg().int(1, d) : new Msg().str(2, String(d)));
  const tensorType = new Msg().int(1, ONNX_DTYPE[t.dtype]).msg(2, shape);
  return new Msg().str(1, t.name).msg(2, new Msg().msg(1, tensorType));
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function encodeAttr(name: string, a: Attr): Msg {
  const m = new Msg().str(1, name).int(20, ATTR_TYPE[a.kind]);
  switch (a.kind) {
    case "float": return m.float(2, a.v);
    case "int": return m.int(3, a.v);
    case "string": return m.str(4, a.v);
    case "tensor": return m.msg(5, encodeTensor(name, a.v));
    case "floats": return m.floats(7, a.v);
    case "ints": return m.ints(8, a.v);
  }
}

function encodeNode(n: Node, alias: ReadonlyMap<string, string>): Msg {
  const m = new Msg();
  for (const i of n.inputs) m.str(1, i ? (alias.get(i.name) ?? i.name) : "");
  for (const o of n.outputs) m.str(2, alias.get(o.name) ?? o.name);
  m.str(3, `${n.op}_${n.id}`).str(4, n.op);
  for (const [k, a] of Object.entries(n.attrs)) m.msg(5, encodeAttr(k, a));
  if (n.domain) m.str(7, n.domain);
  return m;
}
