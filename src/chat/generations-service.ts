import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { createTaskId } from "../auth/opaque-tokens.ts";
import { SluiceError } from "../errors/catalog.ts";
import { callRedis } from "../errors/dependency-failure.ts";
import type { FixedWindowLimiter } from "../limits/fixed-window-limiter.ts";
import { requestCancel } from "../queue/cancel-signals.ts";
import { enqueueGeneration, type GenerationQueue } from "../queue/generation-queue.ts";
import { isJobPending } from "../queue/job-pending.ts";
import type { Db } from "../storage/database.ts";
import { violatedConstraint, sqlStateOf, uniqueViolation } from "../storage/database-errors.ts";
import { createIdempotencyRepository } from "../storage/idempotency-repository.ts";
import type { TurnPlacement } from "../storage/accept-turn.ts";
import { createMessagesRepository, isActiveStatus, type MessagesRepository, type TaskRecord, type TurnInput } from "../storage/messages-repository.ts";
import { presentMessage, type MessageView } from "./present.ts";

export interface GenerationAccepted {
  userMessage?: MessageView;
  assistantMessage: { id: string; status: MessageView["status"] };
  taskId: string;
  streamUrl: string;
}

export interface GenerationsService {
  /** Stores the user's message and a `streaming` placeholder, enqueues the job, returns at once (202). */
  sendMessage(userId: string, conversationId: string, input: { content: string; model?: string | undefined }, idempotencyKey: string | undefined): Promise<GenerationAccepted>;
  /**
   * A new version of a reply (`messageId`, default: the active leaf's), generated as its sibling;
   * the old one stays, one branch over (PROTOCOL.md 13).
   */
  regenerate(userId: string, conversationId: string, input: { model?: string | undefined; messageId?: string | undefined }, idempotencyKey?: string): Promise<GenerationAccepted>;
  /** A new version of the user message `messageId` (its sibling) with a reply to it; nothing is deleted. */
  edit(userId: string, conversationId: string, messageId: string, input: { content: string; model?: string | undefined }, idempotencyKey: string | undefined): Promise<GenerationAccepted>;
  /** Durable marker first, then a notification; any API process, any worker. */
  cancel(userId: string, taskId: string): Promise<void>;
  /**
   * Resolves the task for its owner, or throws STREAM_NOT_FOUND (missing or foreign). Whether a
   * final task's log has expired (410) is the hub's to find: its open reads the log anyway.
   */
  streamAccess(userId: string, taskId: string): Promise<TaskRecord>;
  /**
   * For a stream whose log does not exist (asked only then): wait while the task is
   * queued or running, STREAM_EXPIRED once it is final, STREAM_NOT_FOUND when it is
   * missing or not the user's.
   */
  whenStreamMissing(userId: string, taskId: string): Promise<"wait" | "STREAM_NOT_FOUND" | "STREAM_EXPIRED">;
}

export interface GenerationsDependencies {
  db: Db;
  redis: Redis;
  keyPrefix: string;
  queue: GenerationQueue;
  messages: MessagesRepository;
  messageLimiter: FixedWindowLimiter;
  limits: { generationsPerUser: number; messageChars: number };
  models: { defaultModel: string; allowed: readonly string[] };
  streamUrl: (taskId: string, userId: string) => string;
}

/** One turn asked for: the user's text (none to regenerate), a model, and where the turn goes in the tree. */
interface TurnRequest {
  content?: string | undefined;
  model?: string | undefined;
  placement: TurnPlacement;
}

/** An Idempotency-Key with the hash of the request it was first sent with. */
interface IdempotencyClaim {
  key: string;
  requestHash: string;
}

// Thrown inside the transaction to roll it back when a concurrent request already owns the key.
class IdempotencyRace extends Error {}

export function createGenerationsService(dependencies: GenerationsDependencies): GenerationsService {
  const { db, messages } = dependencies;

  const checkModel = (requested: string | undefined): void => {
    if (requested !== undefined && !dependencies.models.allowed.includes(requested)) {
      throw new SluiceError("MODEL_NOT_ALLOWED", `Model "${requested.slice(0, 100)}" is not allowed. Allowed: ${dependencies.models.allowed.join(", ")}.`);
    }
  };

  const startGeneration = async (userId: string, conversationId: string, input: TurnRequest, idempotency: IdempotencyClaim | undefined): Promise<GenerationAccepted> => {
    checkModel(input.model);
    await callRedis(() => dependencies.messageLimiter.hit(userId));
    const taskId = createTaskId();
    const turnInput: TurnInput = {
      conversationId, userId, userContent: input.content, taskId, requestedModel: input.model,
      models: dependencies.models, activeLimit: dependencies.limits.generationsPerUser, placement: input.placement,
    };
    const accept = async (repository: MessagesRepository): Promise<Omit<GenerationAccepted, "streamUrl">> => {
      const turn = await repository.acceptTurn(turnInput);
      if (turn.kind === "conversation-missing") throw new SluiceError("NOT_FOUND", "No such conversation.");
      if (turn.kind === "message-missing") throw new SluiceError("NOT_FOUND", "No such message in this conversation.");
      if (turn.kind === "not-a-user-message") throw new SluiceError("VALIDATION_FAILED", "Only a user message can be edited; regenerate a reply instead.");
      if (turn.kind === "too-many-generations") throw new SluiceError("TOO_MANY_GENERATIONS", undefined, { details: { retryAfterSeconds: 5 } });
      model = turn.assistant.model ?? model;
      return {
        ...(turn.user ? { userMessage: presentMessage(turn.user) } : {}),
        assistantMessage: { id: turn.assistant.id, status: turn.assistant.status },
        taskId,
      };
    };
    let model = dependencies.models.defaultModel;
    let accepted: Omit<GenerationAccepted, "streamUrl">;
    try {
      // Without an Idempotency-Key the whole turn is one statement; with one, the key, the turn
      // and the stored response commit together.
      accepted = !idempotency ? await accept(messages) : await db.transaction(async (transaction) => {
        const tx = transaction as unknown as Db;
        if (!(await createIdempotencyRepository(tx).insert(userId, idempotency.key, idempotency.requestHash, {}))) {
          throw new IdempotencyRace();
        }
        const result = await accept(createMessagesRepository(tx));
        await createIdempotencyRepository(tx).saveResponse(userId, idempotency.key, result);
        return result;
      });
    } catch (error) {
      if (error instanceof IdempotencyRace && idempotency) return replay(userId, idempotency);
      if (sqlStateOf(error) === uniqueViolation && violatedConstraint(error) === "messages_one_active_per_conversation") {
        throw new SluiceError("GENERATION_IN_PROGRESS");
      }
      throw error;
    }
    try {
      await callRedis(() => enqueueGeneration(dependencies.queue, { taskId, messageId: accepted.assistantMessage.id, conversationId, userId, model }));
    } catch (error) {
      // Redis went away between the checks and the enqueue: do not leave a reply that never starts.
      await messages.forceFinish(taskId, {
        status: "failed", content: "", lastSeq: null, inputTokens: null, outputTokens: null,
        errorCode: "SERVICE_UNAVAILABLE", errorMessage: "The generation could not be queued.",
      });
      throw error;
    }
    return { ...accepted, streamUrl: dependencies.streamUrl(taskId, userId) };
  };

  const replay = async (userId: string, idempotency: IdempotencyClaim): Promise<GenerationAccepted> => {
    const stored = await createIdempotencyRepository(db).find(userId, idempotency.key);
    if (!stored) throw new SluiceError("GENERATION_IN_PROGRESS", "A request with this Idempotency-Key is still being processed.");
    if (stored.requestHash !== idempotency.requestHash) throw new SluiceError("IDEMPOTENCY_KEY_REUSED");
    const response = stored.response as Omit<GenerationAccepted, "streamUrl">;
    // The read token in streamUrl is short-lived, so a replay gets a fresh one.
    return { ...response, streamUrl: dependencies.streamUrl(response.taskId, userId) };
  };

  const checkLength = (content: string): void => {
    if (content.length > dependencies.limits.messageChars) {
      throw new SluiceError("MESSAGE_TOO_LONG", `The message is longer than ${dependencies.limits.messageChars} characters.`);
    }
  };

  /** One key, one request: the hash names the route and its body, so a key reused elsewhere is refused. */
  const idempotencyOf = (key: string | undefined, request: unknown[]) =>
    key === undefined ? undefined : { key, requestHash: createHash("sha256").update(JSON.stringify(request)).digest("hex") };

  const startOnce = async (userId: string, conversationId: string, input: TurnRequest, idempotency: IdempotencyClaim | undefined): Promise<GenerationAccepted> => {
    if (idempotency && (await createIdempotencyRepository(db).find(userId, idempotency.key))) return replay(userId, idempotency);
    return startGeneration(userId, conversationId, input, idempotency);
  };

  return {
    sendMessage: async (userId, conversationId, input, idempotencyKey) => {
      checkLength(input.content);
      const idempotency = idempotencyOf(idempotencyKey, ["messages", conversationId, input.content, input.model ?? null]);
      return startOnce(userId, conversationId, { content: input.content, model: input.model, placement: { kind: "append" } }, idempotency);
    },
    regenerate: async (userId, conversationId, input, idempotencyKey) => {
      const idempotency = idempotencyOf(idempotencyKey, ["regenerate", conversationId, input.messageId ?? null, input.model ?? null]);
      return startOnce(userId, conversationId, { model: input.model, placement: { kind: "regenerate", messageId: input.messageId } }, idempotency);
    },
    edit: async (userId, conversationId, messageId, input, idempotencyKey) => {
      checkLength(input.content);
      const idempotency = idempotencyOf(idempotencyKey, ["edit", conversationId, messageId, input.content, input.model ?? null]);
      return startOnce(userId, conversationId, { content: input.content, model: input.model, placement: { kind: "edit", messageId } }, idempotency);
    },
    cancel: async (userId, taskId) => {
      const task = await messages.findTask(taskId);
      if (!task || task.userId !== userId) throw new SluiceError("STREAM_NOT_FOUND");
      if (isActiveStatus(task.status)) {
        await callRedis(() => requestCancel(dependencies.redis, dependencies.keyPrefix, taskId));
      }
    },
    whenStreamMissing: async (userId, taskId) => {
      // The usual case: the client opened the stream before the worker began. The token already
      // proved the owner; the job says "queued" without PostgreSQL. Anything else asks PostgreSQL.
      if (await callRedis(() => isJobPending(dependencies.queue, dependencies.redis, taskId))) return "wait";
      const task = await messages.findTask(taskId);
      if (!task || task.userId !== userId) return "STREAM_NOT_FOUND";
      return isActiveStatus(task.status) ? "wait" : "STREAM_EXPIRED";
    },
    streamAccess: async (userId, taskId) => {
      const task = await messages.findTask(taskId);
      if (!task || task.userId !== userId) throw new SluiceError("STREAM_NOT_FOUND");
      return task;
    },
  };
}
