import { SluiceError } from "../errors/catalog.ts";
import type { ConversationsRepository } from "../storage/conversations-repository.ts";
import type { Db } from "../storage/database.ts";
import { insertHistory } from "../storage/insert-history.ts";
import type { MessageRole } from "../storage/schema.ts";
import type { StoredCompletion, StoredCompletionsRepository } from "../storage/stored-completions-repository.ts";
import type { GenerationsService } from "./generations-service.ts";

export interface CompletionRequest {
  model: string;
  /** The client's earlier turns, oldest first (system text already folded in, see the route). */
  history: ReadonlyArray<{ role: MessageRole; content: string }>;
  /** The last user message: the turn this call answers. */
  content: string;
  store: boolean;
}

export interface StartedCompletion {
  taskId: string;
  conversationId: string;
  /** When stored, the stored row's time, so later reads of the call show the same `created`. */
  createdAt: Date | undefined;
}

export interface ChatCompletionsService {
  /**
   * One call, one Sluice generation: a new conversation of the key's user holding the client's
   * history, then the ordinary turn (limits, model allow-list, queue) of generations-service.
   * A refused turn leaves no conversation behind.
   */
  start(userId: string, request: CompletionRequest): Promise<StartedCompletion>;
  /** A `store: true` call of this user, else NOT_FOUND (missing, unstored and foreign alike). */
  find(userId: string, taskId: string): Promise<StoredCompletion>;
  /** Cancels a stored call's generation (any API process, any worker); NOT_FOUND as `find`. */
  cancel(userId: string, taskId: string): Promise<void>;
  /** For reading a stored call's log again: wait while it runs, STREAM_EXPIRED once its log is gone. */
  whenStreamMissing(userId: string, taskId: string): Promise<"wait" | "STREAM_NOT_FOUND" | "STREAM_EXPIRED">;
}

export function createChatCompletionsService(dependencies: {
  db: Db;
  conversations: ConversationsRepository;
  generations: GenerationsService;
  storedCompletions: StoredCompletionsRepository;
  models: readonly string[];
  limits: { messageChars: number; historyTurns: number };
}): ChatCompletionsService {
  const { conversations, generations } = dependencies;
  return {
    start: async (userId, request) => {
      // Checked before anything is written, so a refused call creates nothing.
      if (!dependencies.models.includes(request.model)) {
        throw new SluiceError("MODEL_NOT_ALLOWED", `Model "${request.model.slice(0, 100)}" is not allowed. Allowed: ${dependencies.models.join(", ")}.`);
      }
      if (request.history.length > dependencies.limits.historyTurns) {
        throw new SluiceError("VALIDATION_FAILED", `At most ${dependencies.limits.historyTurns} messages per request.`);
      }
      for (const turn of [...request.history, { content: request.content }]) {
        if (turn.content.length > dependencies.limits.messageChars) {
          throw new SluiceError("MESSAGE_TOO_LONG", `A message is longer than ${dependencies.limits.messageChars} characters.`);
        }
      }
      const conversation = await conversations.create(userId, null);
      let taskId: string;
      try {
        await insertHistory(dependencies.db, { conversationId: conversation.id, userId, turns: request.history });
        taskId = (await generations.sendMessage(userId, conversation.id, { content: request.content, model: request.model }, undefined)).taskId;
      } catch (error) {
        // Refused (rate limit, generation limit) or failed before the job was queued: nothing to keep.
        await conversations.delete(userId, conversation.id).catch(() => undefined);
        throw error;
      }
      const createdAt = request.store ? await dependencies.storedCompletions.insert({ taskId, userId, conversationId: conversation.id }) : undefined;
      return { taskId, conversationId: conversation.id, createdAt };
    },
    find: async (userId, taskId) => {
      const found = await dependencies.storedCompletions.find(userId, taskId);
      if (!found) throw new SluiceError("NOT_FOUND", "No such chat completion.");
      return found;
    },
    cancel: async (userId, taskId) => {
      if (!(await dependencies.storedCompletions.find(userId, taskId))) throw new SluiceError("NOT_FOUND", "No such response.");
      await generations.cancel(userId, taskId);
    },
    whenStreamMissing: async (userId, taskId) => generations.whenStreamMissing(userId, taskId),
  };
}
