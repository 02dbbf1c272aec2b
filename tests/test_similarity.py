"""The similarity report (grader/similarity.py) over kept sources, with Debian's sim_c:
copies of the reference solution are flagged, disguised or not; two students sharing
their own code are paired; independent work and the untouched skeleton are not."""
import csv
import re
import shutil
from pathlib import Path

import pytest

from grader import gradebook, similarity

REPO = Path(__file__).resolve().parent.parent
SOL = REPO / "solutions" / "01-sockets"
SKEL = REPO / "chapters" / "01-sockets"
ALT = REPO / "tests" / "selftest" / "01-sockets" / "good-getaddrinfo"
needs_sim = pytest.mark.skipif(not similarity.available(), reason="needs sim_c (tools/setup.sh --similarity)")


def disguise(text):
    """What a copier does: other names, no comments, other layout."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    for old, new in (("listen_fd", "sock"), ("greet", "say_hello"), ("peer_len", "plen"), ("conn", "c"),
                     ("address", "where"), ("bound", "me"), ("line", "buf")):
        text = re.sub(rf"\b{old}\b", new, text)
    return text.replace("    ", "\t").replace(") {", ")\n{")


def keep(out, student, files):
    d = out / "students" / student / "src" / "01-sockets"
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)


@needs_sim
def test_copies_of_the_solution_and_of_each_other_are_reported(tmp_path):
    out = tmp_path / "out"
    sol = {f.name: f.read_text() for f in SOL.glob("*.c")}
    skel = {f.name: f.read_text() for f in SKEL.glob("*.c")}
    alt = {f.name: f.read_text() for f in ALT.glob("*.c")}
    keep(out, "copier", sol)                                        # byte for byte
    keep(out, "disguiser", {"server.c": disguise(sol["server.c"])})
    keep(out, "pat", {"server.c": alt["server.c"]})                 # pat's own work ...
    keep(out, "=mat", {"server.c": alt["server.c"].replace("fd", "s")})   # ... that mat copied
    keep(out, "honest", {"server.c": skel["server.c"], "client.c": skel["client.c"]})   # untouched skeleton
    keep(out, "also-honest", {"client.c": skel["client.c"]})
    rows = similarity.write(out)
    flags = {(r[0], r[2], r[3], r[4]) for r in rows}
    assert ("reference-identical", "server.c", "copier", "reference") in flags
    assert ("reference-identical", "addr.c", "copier", "reference") in flags
    assert ("reference-near", "server.c", "disguiser", "reference") in flags
    assert ("pair", "server.c", "=mat", "pat") in flags
    assert ("pair", "server.c", "copier", "disguiser") in flags
    assert not any("honest" in (r[3], r[4]) for r in rows), rows     # the skeleton alike is no finding
    assert not any({r[3], r[4]} & {"pat", "=mat"} and {r[3], r[4]} & {"copier", "disguiser", "reference"}
                   for r in rows), rows                               # independent solutions are not alike
    table = list(csv.reader(open(out / "similarity.csv")))
    assert table[0][:5] == ["kind", "lesson", "program", "student", "other"]
    assert ["pair", "01-sockets", "server.c", "'=mat", "pat"] == table[[r[3] for r in table].index("'=mat")][:5]
    gradebook.write(out, [])
    page = (out / "gradebook.html").read_text()
    assert "<h2>Similarity</h2>" in page and "identical to the reference solution" in page
    assert "similar to pat" in page and "=mat" in page
    assert "<tr><td>copier</td><td>addr.c, client.c, server.c</td><td></td><td>1</td></tr>" in page
    assert "<tr><td>disguiser</td><td></td><td>server.c</td><td>1</td></tr>" in page


def test_without_sim_c_the_gradebook_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    (tmp_path / "students").mkdir()
    assert similarity.write(tmp_path) is None
    assert "not installed" in (tmp_path / "similarity.html.part").read_text()


def test_the_sources_kept_are_bounded(tmp_path):
    from grader import sandbox
    lesson = tmp_path / "chapters" / "01-sockets"
    lesson.mkdir(parents=True)
    for i in range(6):
        (lesson / f"big{i}.c").write_bytes(b"x" * (1 << 20))
    (lesson / "a.h").write_bytes(b"/* a header */")
    kept = sandbox.kept_sources(tmp_path, [f"01-sockets/big{i}.c" for i in range(6)] + ["01-sockets/a.h"])
    assert sorted(kept) == [f"01-sockets/big{i}.c" for i in range(4)]      # 4 MiB of programs, no headers


@needs_sim
def test_the_page_lists_the_first_findings_and_the_csv_all(tmp_path, monkeypatch):
    monkeypatch.setattr(similarity, "MOST_SHOWN", 2)
    out = tmp_path / "out"
    sol = {f.name: f.read_text() for f in SOL.glob("*.c")}
    for s in ("a", "b", "c"):
        keep(out, s, sol)
    rows = similarity.write(out)
    assert len(rows) == 3 * 3 + 3 * 3        # each of 3 programs: 3 copies of the reference, 3 pairs
    part = (out / "similarity.html.part").read_text()
    assert part.count("<tr class=") == 2 and f"... {len(rows) - 2} more in similarity.csv" in part
