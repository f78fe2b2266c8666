// Response shapes of the Sluice HTTP API (see PROTOCOL.md and the OpenAPI docs at /docs).

export interface User {
  id: string;
  email: string;
}

export interface AuthResponse {
  user: User;
  token: string;
}

export interface MeResponse {
  user: User;
  settings: { defaultModel: string | null; systemPrompt: string | null };
  models: string[];
}

export interface ConversationSummary {
  id: string;
  title: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ConversationPage {
  items: ConversationSummary[];
  nextCursor: string | null;
}

export type MessageStatus = "pending" | "streaming" | "completed" | "cancelled" | "failed";

export interface ErrorInfo {
  code: string;
  message: string;
}

export interface Message {
  id: string;
  role: "user" | "assistant";
  content: string;
  status: MessageStatus;
  createdAt: string;
  model: string | null;
  taskId: string | null;
  error: ErrorInfo | null;
}

export interface ActiveGeneration {
  taskId: string;
  streamUrl: string;
  messageId: string;
}

export interface Conversation extends ConversationSummary {
  messages: Message[];
  activeGeneration: ActiveGeneration | null;
}

export interface SendMessageResponse {
  userMessage: Message;
  assistantMessage: { id: string; status: MessageStatus } & Partial<Message>;
  taskId: string;
  streamUrl: string;
}

export interface RegenerateResponse {
  assistantMessage: { id: string; status: MessageStatus } & Partial<Message>;
  taskId: string;
  streamUrl: string;
}
