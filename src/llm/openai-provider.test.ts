import { expect } from "vitest";
import { startFakeOpenAiServer } from "../../test/support/providers/fake-openai-server.ts";
import { createOpenAiProvider } from "./openai-provider.ts";
import { conversation, describeVendorProvider } from "../../test/support/providers/vendor-provider-suite.ts";

describeVendorProvider("openai", {
  startServer: startFakeOpenAiServer,
  createProvider: createOpenAiProvider,
  finishReason: "stop",
  checkRequest(request) {
    expect(request.headers.authorization).toBe("Bearer sk-test-key");
    expect(request.body).toMatchObject({
      model: conversation.model,
      stream: true,
      stream_options: { include_usage: true },
      messages: conversation.messages,
    });
  },
});
