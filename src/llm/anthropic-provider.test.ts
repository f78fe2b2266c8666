import { expect } from "vitest";
import { startFakeAnthropicServer } from "../../test/support/providers/fake-anthropic-server.ts";
import { createAnthropicProvider, defaultAnthropicMaxOutputTokens } from "./anthropic-provider.ts";
import { conversation, describeVendorProvider } from "../../test/support/providers/vendor-provider-suite.ts";

describeVendorProvider("anthropic", {
  startServer: startFakeAnthropicServer,
  createProvider: createAnthropicProvider,
  finishReason: "end_turn",
  checkRequest(request) {
    // SDK 1.x sends the key as a bearer token; older ones as x-api-key.
    expect(request.headers["x-api-key"] ?? request.headers.authorization).toMatch(/^(Bearer )?sk-test-key$/);
    expect(request.headers["anthropic-version"]).toBeTypeOf("string");
    // System turns travel in the `system` parameter, never as messages.
    expect(request.body).toEqual({
      model: conversation.model,
      max_tokens: defaultAnthropicMaxOutputTokens,
      system: "You are terse.",
      messages: conversation.messages.filter((turn) => turn.role !== "system"),
      stream: true,
    });
  },
});
