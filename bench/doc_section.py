"""One generated section of a Markdown document, rewritten in place.

The scenario and scaling scripts each own a section of docs/benchmarks.md,
fenced by BEGIN/END comment lines; a rerun replaces that section and leaves
the rest of the document (other scripts' sections, hand-written text) as it
was. A document without the section gets it appended.
"""
import os


def write_section(doc, begin, end, section):
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    section = section.rstrip("\n")
    if begin in text and end in text:
        a = text.index(begin)
        b = text.index(end) + len(end)
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(doc, "w") as f:
        f.write(text)
