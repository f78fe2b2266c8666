import type { UIMessageChunk } from "ai";

/** Reads a useChat stream's chunks up to its first text delta (or its end); returns them and the reader, to go on with. */
export async function readUntilText(stream: ReadableStream<UIMessageChunk>): Promise<{ reader: ReadableStreamDefaultReader<UIMessageChunk>; seen: UIMessageChunk[] }> {
  const reader = stream.getReader();
  const seen: UIMessageChunk[] = [];
  while (!seen.some((chunk) => chunk.type === "text-delta")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen.push(value);
  }
  return { reader, seen };
}
