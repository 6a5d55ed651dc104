#!/usr/bin/env python3
"""Writes one benchmark's section of bench/RESULTS.md: the section on stdin (its first line the
"## ..." heading) replaces the section with the same heading, or is appended; every other
section is left as it is. Run from the repository's root: python3 bench/write_section.py < S"""
import re
import sys

section = sys.stdin.read().strip("\n") + "\n"
heading = section.splitlines()[0]
if not heading.startswith("## "):
    sys.exit("write_section.py: the section must start with its '## ' heading, not: " + heading)
path = "bench/RESULTS.md"
text = open(path).read()
match = re.compile(r"^" + re.escape(heading) + r"\n.*?(?=^## |\Z)", re.S | re.M).search(text)
if match:
    rest = text[match.end():]
    text = text[:match.start()] + section + ("\n" if rest else "") + rest
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
