// JSON shapes of the HTTP API that the web UI imports as types (web/src/api/types.ts). This file
// imports nothing, so the UI's type check never reaches server code; present.ts builds them.

export interface ConversationView {
  id: string;
  title: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface SearchResultView {
  conversation: ConversationView;
  /** The newest matching message (open the conversation there); null when only the title matched. */
  message: {
    id: string;
    role: "user" | "assistant";
    createdAt: string;
    /** Plain text around the match, at most about 24 words. */
    snippet: string;
    /** The matched words in `snippet`, as [start, end) UTF-16 offsets. */
    highlights: Array<{ start: number; end: number }>;
  } | null;
}
