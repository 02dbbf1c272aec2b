"""./lab docs -- the static documentation site (mkdocs, Debian's mkdocs-material).

The site's pages are docs/*.md and each lesson's chapters/NN-slug/README.md.  They are
copied into build/docs-src at build time (never committed twice): docs/X.md becomes the
site's X.md and chapters/... keeps its path, so a relative link written for the repository
(`../chapters/01-sockets/README.md`, `../../docs/student.md`, `server.c`) is rewritten to
the same target in the site, and non-Markdown files a page links to (a skeleton `.c`,
`lib/common.h`) are copied along.  The nav lists the guides, then the lessons in order.

This file is also the mkdocs hook named in mkdocs.yml: `on_config` sets the nav and
`on_pre_build` regenerates build/docs-src, so `./lab docs --serve` picks up edits to
docs/ and chapters/ as you save.
"""
import os
import posixpath
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "build" / "docs-src"
SITE = REPO / "build" / "site"
CONFIG = REPO / "mkdocs.yml"
GUIDES = [("Home", "index.md"), ("Student guide", "student.md"),
          ("Instructor guide", "instructor.md"), ("Architecture", "architecture.md"),
          ("Writing a lesson", "writing-a-lesson.md"), ("Mutation testing", "mutation.md")]

# [text](target "title") and [label]: target -- the link forms the pages use
LINK = re.compile(r"(\]\(\s*<?)([^)\s>]+)(>?(?:\s+\"[^\"]*\")?\s*\))")
REF = re.compile(r"^(\s*\[[^\]]+\]:\s*<?)(\S+?)(>?(?:\s+.*)?)$", re.M)
FENCE = re.compile(r"^\s*(```|~~~)")


def lessons_present():
    """(number, title, repo path of its README), in lesson order."""
    found = []
    for d in sorted((REPO / "chapters").iterdir()):
        readme = d / "README.md"
        if d.is_dir() and readme.is_file():
            title = d.name.split("-", 1)[-1].replace("-", " ")
            for line in readme.read_text().splitlines():
                if line.startswith("# "):
                    title = re.sub(r"^\d+\s*[-—·:]\s*", "", line[2:].strip())
                    break
            found.append((d.name.split("-", 1)[0], title, f"chapters/{d.name}/README.md"))
    return found


def pages():
    """{repo path: site path} of every page of the site."""
    out = {f"docs/{p.name}": p.name for p in sorted((REPO / "docs").glob("*.md"))}
    out.update({readme: readme for _, _, readme in lessons_present()})
    return out


def site_path(repo_path):
    """Where a repository file lives in the site (docs/ is the site's top)."""
    return repo_path[len("docs/"):] if repo_path.startswith("docs/") else repo_path


def nav():
    known = [name for _, name in GUIDES]
    items = [{title: name} for title, name in GUIDES if (REPO / "docs" / name).is_file()]
    items += [{Path(p).stem.replace("-", " ").capitalize(): p.name}
              for p in sorted((REPO / "docs").glob("*.md")) if p.name not in known]
    items.append({"Lessons": [{f"{num} · {title}": readme}
                              for num, title, readme in lessons_present()]})
    return items


def _rewrite(text, repo_page, copies):
    """Rewrite the relative links of one page from repository paths to site paths."""
    here = posixpath.dirname(repo_page)
    there = posixpath.dirname(site_path(repo_page))

    def fix(target):
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target, re.I):
            return target                    # external, same-page anchor, absolute
        path, frag = (target.split("#", 1) + [""])[:2]
        if not path:
            return target
        repo_target = posixpath.normpath(posixpath.join(here, path))
        if repo_target.startswith(".."):
            return target                    # outside the repository: leave it to the checks
        full = REPO / repo_target
        if full.is_file() and not repo_target.endswith(".md"):
            copies.add(repo_target)          # a source file the page shows: ship it too
        elif full.is_dir() and (full / "README.md").is_file() and repo_target.startswith("chapters/"):
            repo_target += "/README.md"      # a lesson directory: its page
        new = posixpath.relpath(site_path(repo_target), there or ".")
        if path.endswith("/") and not new.endswith(".md"):
            new += "/"
        return new + (f"#{frag}" if frag else "")

    out, in_fence = [], False
    for line in text.splitlines(keepends=True):
        if FENCE.match(line):
            in_fence = not in_fence
        if not in_fence:
            line = LINK.sub(lambda m: m.group(1) + fix(m.group(2)) + m.group(3), line)
            line = REF.sub(lambda m: m.group(1) + fix(m.group(2)) + m.group(3), line)
        out.append(line)
    return "".join(out)


def prepare(dest=SRC):
    """Bring dest up to date with the site's sources; returns the number of pages.
    Only files whose content changed are written (so `mkdocs serve`, which watches
    dest, is not woken by a rebuild that changed nothing)."""
    dest = Path(dest)
    copies = set()
    wanted = {}
    all_pages = pages()
    for repo_page, site_page in all_pages.items():
        text = _rewrite((REPO / repo_page).read_text(), repo_page, copies)
        wanted[site_page] = text.encode()
    for repo_file in sorted(copies):
        wanted[site_path(repo_file)] = (REPO / repo_file).read_bytes()
    dest.mkdir(parents=True, exist_ok=True)
    for rel, data in wanted.items():
        target = dest / rel
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    for old in sorted(dest.rglob("*"), reverse=True):    # files before their directories
        rel = old.relative_to(dest).as_posix()
        if old.is_file() and rel not in wanted:
            old.unlink()
        elif old.is_dir() and not any(old.iterdir()):
            old.rmdir()
    return len(all_pages)


# -- mkdocs hooks (mkdocs.yml: hooks) -------------------------------------------------

def on_config(config, **kwargs):
    config["nav"] = nav()
    if os.environ.get("SOCKLAB_DOCS_SRC"):          # a build somewhere else (the tests)
        config["docs_dir"] = os.environ["SOCKLAB_DOCS_SRC"]
    return config


def on_pre_build(config, **kwargs):
    prepare(Path(config["docs_dir"]))


# -- ./lab docs -------------------------------------------------------------------

def mkdocs_command():
    """mkdocs with the material theme, or None."""
    for py in (sys.executable, "/usr/bin/python3"):
        if py and Path(py).exists() and subprocess.run(
                [py, "-c", "import mkdocs, mkdocs.utils as u; assert 'material' in u.get_theme_names()"],
                capture_output=True).returncode == 0:
            return [py, "-m", "mkdocs"]
    return None


def require_mkdocs():
    """Install mkdocs and mkdocs-material like tools/setup.sh does (as root), or say how."""
    cmd = mkdocs_command()
    if cmd:
        return cmd
    if subprocess.run(["bash", str(REPO / "tools" / "setup.sh"), "--docs"]).returncode != 0:
        return None                          # setup.sh printed the sudo line
    cmd = mkdocs_command()
    if not cmd:
        print("socklab: mkdocs with the material theme is still not importable; "
              "is this Debian 12 / Ubuntu 22.04+?", file=sys.stderr)
    return cmd


def build_site(mkdocs, site=SITE, src=SRC):
    """prepare + mkdocs build --strict into site; returns the CompletedProcess."""
    SRC.mkdir(parents=True, exist_ok=True)          # mkdocs.yml's docs_dir must exist
    prepare(src)
    cmd = mkdocs + ["build", "--strict", "--clean", "-f", str(CONFIG), "-d", str(site)]
    env = dict(os.environ, SOCKLAB_DOCS_SRC=str(src))
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)


def cmd_docs(args):
    mkdocs = require_mkdocs()
    if not mkdocs:
        return 1
    if args.serve:
        prepare()
        return subprocess.run(mkdocs + ["serve", "--strict", "-f", str(CONFIG),
                                        "-a", args.addr], cwd=REPO).returncode
    t0 = time.monotonic()
    res = build_site(mkdocs)
    took = time.monotonic() - t0
    if res.returncode != 0:
        print(res.stdout + res.stderr, end="")
        print("docs: the build failed (mkdocs --strict turns every warning into an error)")
        return 1
    print(f"docs: {len(pages())} pages built into {SITE.relative_to(REPO)}/ in {took:.1f} s; "
          f"open {SITE.relative_to(REPO)}/index.html, or ./lab docs --serve")
    return 0


def add_parser(sub):
    d = sub.add_parser("docs", help="build the docs site (mkdocs) into build/site")
    d.add_argument("--serve", action="store_true",
                   help="serve it with live reload instead (mkdocs serve)")
    d.add_argument("--addr", default="127.0.0.1:8000", help="address for --serve")
    return d
