// Shared by the tools: read all of stdin as JSON, write JSON to stdout.
export async function readJson(): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

export function writeJson(value: unknown): void {
  process.stdout.write(
    JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? { $bytes: Buffer.from(v).toString("hex") } : v)),
  );
}
