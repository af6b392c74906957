import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./markdown";

describe("draft markdown", () => {
  it("renders headings, lists and bold", () => {
    const html = renderMarkdown("**FINDINGS:**\n- Clear lungs\n- No effusion\n\n## IMPRESSION\nNormal.");
    expect(html).toContain("<strong>FINDINGS:</strong>");
    expect(html).toContain("<li>Clear lungs</li>");
    expect(html).toContain("<h2>IMPRESSION</h2>");
  });

  it("never lets model output run scripts or load anything", () => {
    const html = renderMarkdown('<script>alert(1)</script><img src=x onerror=alert(1)> [link](http://example.invalid) <b onclick="x()">b</b>');
    expect(html).not.toMatch(/<script|<img|onerror|onclick|href/);
    expect(html).toContain("link");
  });
});
