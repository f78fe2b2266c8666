import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config/config.ts";

const workingDirectory = mkdtempSync(join(tmpdir(), "sluice-tracing-config-"));
afterAll(() => rmSync(workingDirectory, { recursive: true, force: true }));
const secret = { AUTH_SECRET: "x".repeat(32) };
const tracingOf = (environment: Record<string, string>) => loadConfig({ ...secret, ...environment }, workingDirectory).tracing;

describe("tracing settings (standard OTEL_* variables)", () => {
  it("are off by default", () => {
    expect(tracingOf({})).toEqual({ tracesEndpoint: undefined, serviceName: undefined, sampleRatio: 1 });
  });

  it("turn on with the generic endpoint, to which /v1/traces is appended", () => {
    expect(tracingOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }).tracesEndpoint).toBe("http://collector:4318/v1/traces");
  });

  it("take the traces endpoint as is, the service name and the sampling ratio", () => {
    expect(
      tracingOf({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://ignored:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://collector.example/custom/traces",
        OTEL_SERVICE_NAME: "chat-api",
        OTEL_TRACES_SAMPLER_ARG: "0.25",
      }),
    ).toEqual({ tracesEndpoint: "https://collector.example/custom/traces", serviceName: "chat-api", sampleRatio: 0.25 });
  });

  it("stay off when OTEL_SDK_DISABLED is true, whatever the endpoint", () => {
    expect(tracingOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" }).tracesEndpoint).toBeUndefined();
  });

  it("reject a ratio outside 0..1 and a non-HTTP endpoint, with the variable named", () => {
    try {
      tracingOf({ OTEL_TRACES_SAMPLER_ARG: "2", OTEL_EXPORTER_OTLP_ENDPOINT: "grpc://collector:4317" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join("\n");
      expect(problems).toContain("OTEL_TRACES_SAMPLER_ARG");
      expect(problems).toContain("OTEL_EXPORTER_OTLP_ENDPOINT");
    }
  });
});
