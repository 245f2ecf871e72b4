#!/usr/bin/env python3
"""Lists public types without a one-line doc comment (the project's rule for every public type)."""
import re, subprocess, sys

declaration = re.compile(r'^\s*(?:@\w+(?:\([^)]*\))?\s+)*public\s+(?:final\s+)?(?:struct|class|enum|protocol|actor|typealias)\s+\w+')
missing = []
for path in subprocess.run(["git", "ls-files", "Sources/*.swift"], capture_output=True, text=True).stdout.split():
    lines = open(path, encoding="utf-8").read().split("\n")
    for index, line in enumerate(lines):
        if not declaration.match(line):
            continue
        previous = index - 1
        while previous >= 0 and lines[previous].strip().startswith("@"):
            previous -= 1
        if previous < 0 or not lines[previous].strip().startswith("///"):
            missing.append(f"{path}:{index + 1}: {line.strip()}")
print("\n".join(missing) if missing else "every public type has a doc comment")
sys.exit(1 if missing else 0)
