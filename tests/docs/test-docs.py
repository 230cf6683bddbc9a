#!/usr/bin/env python3
"""The examples of README.md and docs/*.md, checked against the code. Prints TAP.

Usage: test-docs.py SOURCE_ROOT [MTASKCTL MTASK_WORKER]
The two programs default to $MTASK_CTL and $MTASK_WORKER (tests/meson.build
sets both). What is checked, block by block (docs/devdb.md says the same to
the people who write the pages):

- c: compiled with the project's headers. A block is a whole translation
  unit unless the line before it is '<!-- fragment -->' or
  '<!-- fragment: PARAMS -->': then its #include lines go to the top and the
  rest becomes the body of 'void f (PARAMS)'.
- sh: every mtaskctl or mtask-worker command (at the start of a line or of
  a $(...)) must name a command that exists, and each --flag it uses must
  appear in that command's --help. The same for inline code that starts
  with mtaskctl or mtask-worker.
- js: must parse (node --check); skipped without Node.js.
- text: nothing to check. Any other language, or none, is a failure: a
  block the test cannot place would go unchecked.
- every relative link, and its #anchor, must resolve.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Callbacks have the signatures the ABI fixes, and an example that ignores
# `state` is no worse for it; everything else -Wextra says is an error.
# -D_GNU_SOURCE as the project's own build has it: under a strict -std=c11
# libmongoc's headers need POSIX's declarations (struct addrinfo).
CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-fPIC"]
FRAGMENT_PRELUDE = ["stdbool.h", "stddef.h", "stdint.h", "stdio.h", "stdlib.h", "string.h"]
SHELL_LANGS = {"sh", "bash", "shell", "console"}
PROGRAMS = ("mtaskctl", "mtask-worker")

root = os.path.abspath(sys.argv[1])
ctl = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("MTASK_CTL")
worker = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("MTASK_WORKER")
if not ctl or not worker:
    print("1..0 # SKIP MTASK_CTL and MTASK_WORKER are not set (run it from meson test)")
    sys.exit(0)
binaries = {"mtaskctl": ctl, "mtask-worker": worker}

results = []  # (ok, name, diagnostics, directive)


def check(ok, name, diag="", directive=""):
    results.append((ok, name, diag, directive))


class Block:
    def __init__(self, path, line, lang, marker):
        self.path, self.line, self.lang, self.marker = path, line, lang, marker
        self.lines = []


def parse(path):
    """The fenced blocks of a page, and its prose with the blocks blanked
    out (same line numbers)."""
    rel = os.path.relpath(path, root)
    blocks, prose, block = [], [], None
    lines = open(path, encoding="utf-8").read().split("\n")
    for n, line in enumerate(lines, 1):
        if block is None:
            m = re.match(r"^\s*```\s*([^`\s]*)\s*$", line)
            if m:
                before = lines[n - 2].strip() if n >= 2 else ""
                block = Block(rel, n, m.group(1), before)
                prose.append("")
            else:
                prose.append(line)
        elif line.strip() == "```":
            blocks.append(block)
            block = None
            prose.append("")
        else:
            block.lines.append(line)
            prose.append("")
    if block is not None:
        check(False, f"/docs/fence/{rel}:{block.line}", "# the block is never closed")
    return blocks, "\n".join(prose)


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)


def comment(text):
    return "\n".join("# " + l for l in text.rstrip().split("\n"))


# ---- c ----------------------------------------------------------------------

pkg = run(["pkg-config", "--cflags", "libbson-1.0", "libmongoc-1.0"])
include_flags = ["-I", os.path.join(root, "core", "include")] + pkg.stdout.split()
cc = os.environ.get("CC", "cc")
tmp = tempfile.mkdtemp(prefix="mtask-docs-")


def check_c(block, index):
    name = f"/docs/c/{block.path}:{block.line}"
    m = re.match(r"^<!--\s*fragment(?::\s*(.*?))?\s*-->$", block.marker)
    first = block.line + 1
    if m:
        params = m.group(1) or "void"
        src = [f"#include <{h}>" for h in FRAGMENT_PRELUDE]
        body = []
        for n, line in enumerate(block.lines, first):
            if re.match(r"^\s*#\s*include\b", line):
                src += [f'#line {n} "{block.path}"', line]
            else:
                body.append((n, line))
        src += ["", f"void docs_fragment ({params});",
                f"void docs_fragment ({params})", "{"]
        if body:
            src.append(f'#line {body[0][0]} "{block.path}"')
            src += [line for _, line in body]
        src.append("}")
        name += " (fragment)"
    else:
        src = [f'#line {first} "{block.path}"'] + block.lines
    c_file = os.path.join(tmp, f"block{index}.c")
    with open(c_file, "w") as f:
        f.write("\n".join(src) + "\n")
    out = run([cc] + CFLAGS + include_flags + ["-c", c_file, "-o", c_file + ".o"],
              cwd=root)
    check(out.returncode == 0, name, comment(out.stdout) if out.returncode else "")


# ---- mtaskctl and mtask-worker commands -------------------------------------

help_cache = {}


def help_of(program, words):
    key = (program, tuple(words))
    if key not in help_cache:
        out = run([binaries[program]] + list(words) + ["--help"])
        help_cache[key] = (out.returncode, out.stdout)
    return help_cache[key]


def has_flag(text, flag):
    return flag == "--help" or re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", text)


def takes_value(text, flag):
    """Whether --help shows the flag followed by a placeholder: --db NAME."""
    return re.search(r"(?<![\w-])" + re.escape(flag) + r"[ =][A-Z][A-Z_]*\b", text)


def usage_names(text, words):
    """Whether the usage line names these command words, as a command and
    not as a family of them ('mtaskctl [connection] group COMMAND')."""
    first = text.split("\n", 1)[0]
    return re.search(r"(^|\s)" + re.escape(" ".join(words)) + r"(?!\s+COMMAND\b)(\s|$)", first)


def tokens_of(command):
    """Words of a documented command line: quoted strings become one word,
    brackets around optional parts go, a comment or the ) closing a $(...)
    ends it."""
    command = re.sub(r"'[^']*'|\"[^\"]*\"", "Q", command)
    command = re.split(r"\)|\s#", command, maxsplit=1)[0]
    return command.replace("[", " ").replace("]", " ").split()


def check_command(where, program, tokens):
    name = f"/docs/cmd/{where} {program}"
    problems = []
    top_rc, top = help_of(program, [])
    if top_rc != 0:
        check(False, name, comment(f"'{program} --help' exited {top_rc}\n{top}"))
        return
    i, before = 0, []
    while i < len(tokens) and tokens[i].startswith("--"):
        flag = tokens[i].split("=", 1)[0]
        before.append(flag)
        i += 2 if takes_value(top, flag) and "=" not in tokens[i] else 1
    words, text = [], top
    if program == "mtaskctl" and i < len(tokens):
        first = tokens[i]
        second = tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("--") else None
        for candidate in ([first, second], [first]) if second else ([first],):
            rc, out = help_of(program, candidate)
            if rc == 0 and usage_names(out, candidate):
                words, text = candidate, out
                break
        if not words:
            asked = " ".join([first, second] if second else [first])
            problems.append(f"no command '{asked}': its --help shows no usage of it")
        i += len(words)
    after = [t.split("=", 1)[0] for t in tokens[i:] if t.startswith("--")]
    if program == "mtask-worker":
        after, before = before + after, []
    for flag in before:
        if not has_flag(top, flag):
            problems.append(f"{flag}: not in '{program} --help'")
    for flag in after:
        if not has_flag(text, flag):
            problems.append(f"{flag}: not in '{' '.join([program] + words + ['--help'])}'")
    name += "".join(" " + w for w in words)
    check(not problems, name, comment("\n".join(problems)) if problems else "")


def commands_in_shell(block):
    text = "\n".join(block.lines).replace("\\\n", " ")
    starts = r"(?:^|\$\(|[;&|]\s)\s*(" + "|".join(PROGRAMS) + r")(?=\s|$)"
    for n, line in enumerate(text.split("\n")):
        for m in re.finditer(starts, line):
            yield (f"{block.path}:{block.line + 1 + n}", m.group(1),
                   tokens_of(line[m.end():]))


def commands_in_prose(rel, prose):
    for m in re.finditer(r"(?<!`)`([^`]+)`(?!`)", prose):
        span = " ".join(m.group(1).split())
        parts = span.split(" ", 1)
        if parts[0] in PROGRAMS and len(parts) > 1:
            line = prose.count("\n", 0, m.start()) + 1
            yield (f"{rel}:{line}", parts[0], tokens_of(parts[1]))


# ---- links ------------------------------------------------------------------

def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


anchor_cache = {}


def anchors(path):
    if path not in anchor_cache:
        seen, found = {}, set()
        _, prose = parse(path)
        for line in prose.split("\n"):
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                s = slug(m.group(1))
                k = seen.get(s, 0)
                seen[s] = k + 1
                found.add(s if k == 0 else f"{s}-{k}")
        anchor_cache[path] = found
    return anchor_cache[path]


def check_links(rel, prose):
    problems = []
    here = os.path.dirname(os.path.join(root, rel))
    for m in re.finditer(r"\[[^\]]*\]\(([^)\s]+)\)", prose):
        target = m.group(1)
        line = prose.count("\n", 0, m.start()) + 1
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(here, path)) if path else os.path.join(root, rel)
        if not os.path.exists(full):
            problems.append(f"{rel}:{line}: {target}: no such file")
            continue
        if anchor and (not full.endswith(".md") or anchor not in anchors(full)):
            problems.append(f"{rel}:{line}: {target}: no heading '#{anchor}' there")
    diag = "\n".join(problems)
    check(not problems, f"/docs/links/{rel}", comment(diag) if diag else "")


# ---- the pages ----------------------------------------------------------------

pages = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
c_index = 0
for page in pages:
    rel = os.path.relpath(page, root)
    blocks, prose = parse(page)
    for block in blocks:
        where = f"{block.path}:{block.line}"
        if block.lang == "c":
            c_index += 1
            check_c(block, c_index)
        elif block.lang in SHELL_LANGS:
            for found in commands_in_shell(block):
                check_command(*found)
        elif block.lang == "js":
            if shutil.which("node"):
                js = os.path.join(tmp, f"block{block.line}.js")
                with open(js, "w") as f:
                    f.write("\n".join(block.lines) + "\n")
                out = run(["node", "--check", js])
                check(out.returncode == 0, f"/docs/js/{where}", comment(out.stdout) if out.returncode else "")
            else:
                check(True, f"/docs/js/{where}", directive=" # SKIP node is not installed")
        elif block.lang != "text":
            check(False, f"/docs/fence/{where}",
                  f"# a block of language '{block.lang}': use c, sh, js or text")
    for found in commands_in_prose(rel, prose):
        check_command(*found)
    check_links(rel, prose)

shutil.rmtree(tmp, ignore_errors=True)
print(f"1..{len(results)}")
failed = 0
for n, (ok, name, diag, directive) in enumerate(results, 1):
    print(f"{'ok' if ok else 'not ok'} {n} - {name}{directive}")
    if diag:
        print(diag)
    failed += not ok
sys.exit(1 if failed else 0)
