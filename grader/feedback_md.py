"""A failure report as Markdown, for Gradescope (a test's `output_format: "md"`).

Gradescope puts "text" output in a <pre> block and renders "md" as basic Markdown
(its autograder specification, "Output String Formatting"; its "html" is sanitized).
The prose parts (expected, happened, hint) become paragraphs; everything laid out in
columns -- the ladder diagram, the wire, the program's output -- stays in fenced code
blocks, so the diagram keeps its shape in the browser.
"""
import re

PROSE = ("expected", "happened", "hint", "problem", "where")
LOCAL = ("pcap",)       # a file on the grading machine: nothing a student can open
_SPECIAL = re.compile(r"([\\*_{}\[\]<>#+!|~])")


def escape(text):
    """Markdown-inert text; `code spans` survive where their backticks pair up."""
    text = _SPECIAL.sub(r"\\\1", text)
    return text if text.count("`") % 2 == 0 else text.replace("`", "\\`")


def fenced(text):
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def markdown(sections):
    """[(title, text)] -> Markdown."""
    out = []
    for title, text in sections:
        if title in LOCAL:
            continue
        text = str(text).rstrip() or "(empty)"
        if title in PROSE and "\n" not in text:
            out.append(f"**{title}** {escape(text)}")
        else:
            out.append(f"**{title}**\n\n{fenced(text)}")
    return "\n\n".join(out) + "\n"


def gradescope_output(result):
    """(output, output_format) of one raw result (grader.plugin's per-test entry)."""
    if result.get("outcome") == "failed" and result.get("sections"):
        return markdown(result["sections"]), "md"
    text = result.get("text") or (f"measured: {result['measured']}" if result.get("measured") else "")
    return text, "text"
