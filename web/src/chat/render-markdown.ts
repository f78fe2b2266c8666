import MarkdownIt from "markdown-it";

/**
 * Model output is untrusted. `html: false` makes markdown-it escape every raw HTML
 * tag, so `<script>` or `onerror=` in a reply renders as text; its default
 * validateLink already refuses `javascript:`, `vbscript:` and most `data:` URLs.
 * The returned string is therefore safe for dangerouslySetInnerHTML.
 */
const markdown = new MarkdownIt({ html: false, linkify: true, breaks: false, typographer: false });

const defaultLinkOpen =
  markdown.renderer.rules.link_open ?? ((tokens, index, options, _env, self) => self.renderToken(tokens, index, options));

markdown.renderer.rules.link_open = (tokens, index, options, env, self) => {
  const token = tokens[index];
  if (token) {
    token.attrSet("target", "_blank");
    token.attrSet("rel", "noopener noreferrer");
  }
  return defaultLinkOpen(tokens, index, options, env, self);
};

const defaultImage = markdown.renderer.rules.image ?? ((tokens, index, options, _env, self) => self.renderToken(tokens, index, options));

/**
 * An image from another origin is rendered as a link to it, never fetched: the
 * page's Content-Security-Policy (img-src 'self' data:) would block it anyway,
 * and a model-written image URL is a way to send the reader's address (and
 * anything the URL encodes) to a third party. Same-origin paths and the `data:`
 * images markdown-it allows stay images.
 */
markdown.renderer.rules.image = (tokens, index, options, env, self) => {
  const token = tokens[index];
  if (!token) return "";
  const source = String(token.attrGet("src") ?? "");
  if (isSameOriginOrData(source)) return defaultImage(tokens, index, options, env, self);
  const label = self.renderInlineAsText(token.children ?? [], options, env) || source;
  const escape = markdown.utils.escapeHtml;
  return `<a href="${escape(source)}" target="_blank" rel="noopener noreferrer" class="external-image">${escape(label)}</a>`;
};

/** Resolved as the browser would (WHATWG URL: `//host`, `/\\host`, tabs and all), against a placeholder origin. */
export function isSameOriginOrData(source: string): boolean {
  const placeholder = "https://same-origin.invalid";
  try {
    const url = new URL(source, `${placeholder}/c/`);
    return url.origin === placeholder || url.protocol === "data:";
  } catch {
    return false;
  }
}

markdown.renderer.rules.fence = (tokens, index) => {
  const token = tokens[index];
  if (!token) return "";
  const language = token.info.trim().split(/\s+/)[0] ?? "";
  const escapedLanguage = markdown.utils.escapeHtml(language);
  const languageClass = language ? ` class="language-${escapedLanguage}"` : "";
  // The copy button is wired by event delegation in MessageContent (no inline handlers).
  return (
    `<div class="code-block"><div class="code-block-header"><span>${escapedLanguage || "code"}</span>` +
    `<button type="button" class="code-copy" data-copy-code aria-label="Copy code">Copy</button></div>` +
    `<pre><code${languageClass}>${markdown.utils.escapeHtml(token.content)}</code></pre></div>\n`
  );
};

export function renderMarkdown(source: string): string {
  return markdown.render(source);
}
