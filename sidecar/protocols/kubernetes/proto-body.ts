// What the guardrails need from a protobuf request body (kubectl sends built-in objects as `application/vnd.kubernetes.protobuf`): kind, name, labels, annotations, Secret type (pure).
//
// The envelope is `k8s\0` + runtime.Unknown {1 typeMeta {1 apiVersion, 2 kind}, 2 raw}; `raw` is the
// object, whose field 1 is ObjectMeta {1 name, 2 generateName, 11 labels, 12 annotations} and, for a
// Secret, field 3 is `type` (k8s.io/api/core/v1/generated.proto). Anything else is skipped by wire type.

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** The fields of a protobuf object the guardrails read, shaped like its JSON. */
export interface ProtoObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly generateName: string; readonly labels: Readonly<Record<string, string>>; readonly annotations: Readonly<Record<string, string>> };
  /** Secret `type` (field 3 of a Secret; `''` for other kinds). */
  readonly type: string;
}

type Field = { readonly no: number; readonly wire: number; readonly bytes?: Buffer };

/** Reads a base-128 varint at `at`; returns the value and the next offset. Throws when truncated. */
function varint(b: Buffer, at: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = at; i < b.length && i < at + 10; i++) {
    const byte = b[i] ?? 0;
    v += (byte & 0x7f) * mul;
    mul *= 128;
    if ((byte & 0x80) === 0) return [v, i + 1];
  }
  throw new Error('truncated varint');
}

/** The top-level fields of one message (length-delimited ones with their bytes). Throws on malformed input. */
function fields(b: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < b.length) {
    const [key, next] = varint(b, at);
    at = next;
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) at = varint(b, at)[1];
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const [len, start] = varint(b, at);
      if (start + len > b.length) throw new Error('truncated field');
      out.push({ no, wire, bytes: b.subarray(start, start + len) });
      at = start + len;
      continue;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (at > b.length) throw new Error('truncated field');
    out.push({ no, wire });
  }
  return out;
}

function str(fs: readonly Field[], no: number): string {
  const f = fs.find((x) => x.no === no && x.bytes !== undefined);
  return f?.bytes?.toString('utf8') ?? '';
}

function sub(fs: readonly Field[], no: number): Field[] {
  const f = fs.find((x) => x.no === no && x.bytes !== undefined);
  return f?.bytes !== undefined ? fields(f.bytes) : [];
}

/** A `map<string, string>` field: repeated entries {1 key, 2 value}. */
function map(fs: readonly Field[], no: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs) {
    if (f.no !== no || f.bytes === undefined) continue;
    const e = fields(f.bytes);
    out[str(e, 1)] = str(e, 2);
  }
  return out;
}

/** Decodes a Kubernetes protobuf body; undefined when it is not one (the guardrails then fail closed where they need it). */
export function decodeProtoObject(body: Buffer | undefined): ProtoObject | undefined {
  if (body === undefined || body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  try {
    const unknown = fields(body.subarray(MAGIC.length));
    const typeMeta = sub(unknown, 1);
    const obj = sub(unknown, 2);
    const meta = sub(obj, 1);
    const kind = str(typeMeta, 2);
    return {
      apiVersion: str(typeMeta, 1), kind,
      metadata: { name: str(meta, 1), generateName: str(meta, 2), labels: map(meta, 11), annotations: map(meta, 12) },
      type: kind === 'Secret' ? str(obj, 3) : '',
    };
  } catch {
    return undefined;
  }
}
