import { describe, expect, test } from "vitest";
import { isSameOriginOrData, renderMarkdown } from "./render-markdown.ts";

describe("images in model output", () => {
  test.each([
    "https://attacker.example/pixel.png?who=me",
    "http://attacker.example/a.png",
    "//attacker.example/a.png",
    "HTTPS://ATTACKER.EXAMPLE/a.png",
  ])("from another origin (%s) become a link, never an <img>", (source) => {
    const html = renderMarkdown(`look: ![a pixel](${source})`);
    expect(html).not.toContain("<img");
    expect(html).toMatch(/<a href="[^"]*attacker\.example[^"]*" target="_blank" rel="noopener noreferrer" class="external-image">a pixel<\/a>/i);
  });

  test("a backslash cannot turn a path into another host: markdown-it percent-encodes it first", () => {
    expect(renderMarkdown("![x](/\\attacker.example/a.png)")).toContain('<img src="/%5Cattacker.example/a.png"');
  });

  test("a link without alt text is labelled by its URL, escaped", () => {
    const html = renderMarkdown(`![](https://attacker.example/x.png?a="b"&c=<d>)`);
    expect(html).not.toContain("<img");
    expect(html).not.toContain("<d>");
    expect(html).toContain("https://attacker.example/x.png?a=%22b%22&amp;c=%3Cd%3E</a>");
  });

  test.each(["/logo.png", "assets/chart.png", "data:image/png;base64,iVBORw0KGgo="])("from this origin or data: (%s) stay images", (source) => {
    expect(renderMarkdown(`![chart](${source})`)).toContain(`<img src="${source}" alt="chart">`);
  });

  test("the origin check follows the URL parser, not the text", () => {
    expect(isSameOriginOrData("/a.png")).toBe(true);
    expect(isSameOriginOrData("//evil.example/a.png")).toBe(false);
    expect(isSameOriginOrData("/\t/evil.example/a.png")).toBe(false);
    expect(isSameOriginOrData("https://same-origin.invalid.evil.example/")).toBe(false);
  });
});
