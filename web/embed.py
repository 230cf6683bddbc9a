#!/usr/bin/env python3
"""Turns the dashboard's files (web/pages/) into C: one array per file, and
a table of {name, MIME type, bytes, size} that mtask-web serves from.

Usage: embed.py --list DIR          prints the files of DIR, one a line
       embed.py OUTPUT.c FILE...    writes the table of those files
No JS build step: each file is served byte for byte as it is in the tree.
"""
import os
import sys

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--list":
        for name in sorted(os.listdir(sys.argv[2])):
            path = os.path.join(sys.argv[2], name)
            if os.path.isfile(path) and not name.startswith("."):
                print(path)
        return 0
    if len(sys.argv) < 2:
        sys.exit("usage: embed.py --list DIR | embed.py OUTPUT.c FILE...")
    out = ["/* Written by web/embed.py from web/pages/: do not edit. */",
           '#include "web.h"', ""]
    rows = []
    for i, path in enumerate(sys.argv[2:]):
        name = os.path.basename(path)
        ext = os.path.splitext(name)[1].lower()
        if ext not in TYPES:
            sys.exit(f"embed.py: {path}: no MIME type for '{ext}' files; add it to TYPES in web/embed.py")
        data = open(path, "rb").read()
        out.append(f"static const unsigned char file_{i}[] = {{")
        for k in range(0, len(data), 16):
            out.append("   " + ", ".join(str(b) for b in data[k:k + 16]) + ",")
        out.append("   0};")
        rows.append(f'   {{"{name}", "{TYPES[ext]}", file_{i}, {len(data)}}},')
    out.append("const web_file_t web_files[] = {")
    out += rows
    out.append("   {NULL, NULL, NULL, 0},")
    out.append("};")
    open(sys.argv[1], "w").write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
