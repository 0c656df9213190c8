// Markdown for messages, through markdown-it with raw HTML off: `<script>` or `<img onerror>`
// in a message is text, never markup. Links open in a new tab without handing over the page
// (rel="noopener noreferrer"); images are not rendered (they would load from other origins).

import markdownit from "./vendor/markdown-it.mjs";

const md = markdownit({ html: false, linkify: true, breaks: true });
md.disable("image");

const defaultLinkOpen =
  md.renderer.rules.link_open ||
  ((tokens, idx, options, env, self) => self.renderToken(tokens, idx, options));

md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  token.attrSet("rel", "noopener noreferrer");
  token.attrSet("target", "_blank");
  return defaultLinkOpen(tokens, idx, options, env, self);
};

export function renderMarkdown(text) {
  return md.render(text || "");
}
