"""The docs site: it builds offline with mkdocs --strict, and every link in it resolves.

Also checks, without mkdocs, that the relative links in docs/*.md and every lesson's
README.md point at files that exist in the repository.
"""
import html.parser
import os
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from grader import docs

REPO = Path(__file__).resolve().parent.parent
MD_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_sources():
    return sorted(REPO.glob("docs/*.md")) + sorted(REPO.glob("chapters/*/README.md"))


def relative_links(md):
    in_fence = False
    for n, line in enumerate(md.read_text().splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        line = re.sub(r"`[^`]*`", "", line)         # code spans are not links
        for target in MD_LINK.findall(line):
            if not re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target, re.I):
                yield n, target


@pytest.mark.parametrize("md", markdown_sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_in_the_repository_point_at_files(md):
    broken = []
    for n, target in relative_links(md):
        path = unquote(target.split("#", 1)[0])
        if path and not (md.parent / path).exists():
            broken.append(f"{md.relative_to(REPO)}:{n}: {target}")
    assert not broken, "links to files that do not exist:\n  " + "\n  ".join(broken)


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        for key in ("href", "src"):
            if a.get(key) is not None and tag in ("a", "link", "script", "img", "source", "iframe"):
                self.links.append(a[key])


@pytest.fixture(scope="module")
def mkdocs():
    """`./lab test` installs mkdocs before the tests start (as root: tools/setup.sh --docs)."""
    cmd = docs.mkdocs_command()
    if not cmd:
        pytest.skip("mkdocs with the material theme is not installed: sudo bash tools/setup.sh --docs")
    return cmd


def test_site_builds_strictly_and_every_internal_link_and_anchor_resolves(mkdocs, tmp_path):
    site = tmp_path / "site"
    t0 = time.monotonic()
    res = docs.build_site(mkdocs, site=site, src=tmp_path / "src")
    took = time.monotonic() - t0
    assert res.returncode == 0, "mkdocs build --strict failed:\n" + res.stdout + res.stderr
    assert "WARNING" not in res.stderr, res.stderr
    assert took < 30, f"the docs build took {took:.1f} s"

    # every guide and every lesson present is a page of the site
    for repo_page, site_page in docs.pages().items():
        built = site / re.sub(r"(^|/)README\.md$", r"\1index.md", site_page)
        assert built.with_suffix(".html").is_file(), f"{repo_page} is not in the site"
    home = (site / "index.html").read_text()
    for _, title, _ in docs.lessons_present():
        assert title.replace("&", "&amp;") in home, f"lesson '{title}' is missing from the nav"
    assert "fonts.googleapis.com" not in home, "the site must not need the network"

    pages = {}
    for f in site.rglob("*.html"):
        p = _Page()
        p.feed(f.read_text())
        pages[f] = p
    broken = []
    for f, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("//"):
                continue                                 # external
            if f.name == "404.html" and link.startswith("/"):
                continue                                 # the 404 page is served from the root
            if parts.path:
                target = (site / parts.path.lstrip("/")) if parts.path.startswith("/") \
                    else (f.parent / unquote(parts.path))
                target = Path(os.path.normpath(target))
                if target.is_dir():
                    target = target / "index.html"
            else:
                target = f
            where = f"{f.relative_to(site)} -> {link}"
            if not target.exists():
                broken.append(f"{where}: no such file")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where}: no anchor #{parts.fragment}")
    assert not broken, "broken links in the built site:\n  " + "\n  ".join(sorted(set(broken)))


def test_docs_pages_follow_the_repository(tmp_path):
    """Links written for the repository are rewritten to the same targets in the site."""
    src = tmp_path / "src"
    docs.prepare(src)
    assert (src / "index.md").is_file() and not (src / "docs").exists()
    lessons = sorted(p.parent.name for p in REPO.glob("chapters/*/README.md"))
    assert sorted(p.parent.name for p in src.glob("chapters/*/README.md")) == lessons
    text = docs._rewrite("[a](../chapters/01-sockets/README.md#contract) [b](student.md) "
                         "[c](https://example.org/x.md)\n```\n[d](nowhere.md)\n```\n",
                         "docs/index.md", set())
    assert "(chapters/01-sockets/README.md#contract)" in text and "(student.md)" in text
    assert "(https://example.org/x.md)" in text and "(nowhere.md)" in text
    copies = set()
    text = docs._rewrite("[s](../../docs/student.md) [c](../../lib/common.h) [n](../02-x/)",
                         "chapters/01-sockets/README.md", copies)
    assert "(../../student.md)" in text and "(../../lib/common.h)" in text
    assert copies == {"lib/common.h"}
    nav_lessons = docs.nav()[-1]["Lessons"]
    assert [list(i.values())[0] for i in nav_lessons] == \
        [f"chapters/{name}/README.md" for name in lessons]
