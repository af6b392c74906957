// Draft text as the model writes it (Markdown: headings, lists, bold) turned
// into HTML by `marked`, then sanitised by DOMPurify: model output is never
// trusted as markup (no scripts, no links out, no images).
import { marked } from "marked";
import DOMPurify from "dompurify";

const ALLOWED_TAGS = ["p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "code", "pre", "blockquote", "hr", "table", "thead", "tbody", "tr", "th", "td"];

export function renderMarkdown(text: string): string {
  const html = marked.parse(text, { async: false, gfm: true, breaks: true }) as string;
  return DOMPurify.sanitize(html, { ALLOWED_TAGS, ALLOWED_ATTR: [] });
}
