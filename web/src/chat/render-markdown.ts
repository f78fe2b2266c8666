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
