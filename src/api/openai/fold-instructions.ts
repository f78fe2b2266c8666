import type { CompletionRequest } from "../../chat/chat-completions-service.ts";
import { SluiceError } from "../../errors/catalog.ts";

export interface IncomingTurn {
  role: "system" | "developer" | "user" | "assistant";
  content: string;
}

/**
 * A call's messages as one Sluice turn (both `/v1/chat/completions` and `/v1/responses`): the
 * last message must be the user's; earlier user and assistant messages become the
 * conversation's history. Sluice's worker sends only the account's system prompt as a system
 * message, so `system` and `developer` text goes before the first user message (separated by a
 * blank line), where every provider reads it.
 */
export function foldInstructions(input: { model: string; turns: readonly IncomingTurn[]; store: boolean; param: "messages" | "input" }): CompletionRequest {
  const instructions: string[] = [];
  const turns: Array<{ role: "user" | "assistant"; content: string }> = [];
  for (const turn of input.turns) {
    if (turn.role === "system" || turn.role === "developer") instructions.push(turn.content);
    else turns.push({ role: turn.role, content: turn.content });
  }
  if (input.turns.at(-1)?.role !== "user") {
    throw new SluiceError("VALIDATION_FAILED", `The last item of ${input.param} must have the role "user".`, { details: { issues: [{ path: `body/${input.param}`, message: "the last message must be the user's" }] } });
  }
  const firstUser = turns.findIndex((turn) => turn.role === "user");
  const prefix = instructions.filter((instruction) => instruction !== "").join("\n\n");
  const withInstructions = turns.map((turn, index) => (index === firstUser && prefix !== "" ? { ...turn, content: `${prefix}\n\n${turn.content}` } : turn));
  const final = withInstructions.pop();
  return { model: input.model, history: withInstructions, content: final?.content ?? "", store: input.store };
}
