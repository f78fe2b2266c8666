import { z } from "zod";
import { text } from "../schemas.ts";

/** A sampling parameter Sluice accepts and ignores: the provider's default applies. */
export const optionalNumber = z.number().nullish();

/**
 * The fields Chat Completions and Responses bodies share, checked alike. Sampling and
 * attribution (`temperature` … `service_tier`) are accepted and ignored (README "Use Sluice
 * from the OpenAI SDK"), so existing code runs unchanged.
 */
export const commonRequestFields = {
  model: text().min(1).max(200),
  stream: z.boolean().nullish(),
  store: z.boolean().nullish(),
  metadata: z.record(text().max(64), text().max(512)).nullish(),
  temperature: optionalNumber,
  top_p: optionalNumber,
  user: text().max(256).optional(),
  safety_identifier: text().max(256).optional(),
  prompt_cache_key: text().max(256).optional(),
  service_tier: text().max(32).nullish(),
};
