"""./lab mutate: its operators make the intended mistakes, every mutant of a small
fixture is C that compiles, and a killed and a surviving mutant of lesson 01 are
judged so by its graders.  Needs python3-clang (tools/packages-mutate.txt)."""
import subprocess
from pathlib import Path

import pytest

from grader import mutate, mutations
from conftest import slowed

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "mutate" / "fixture.c"

ci = mutations.clang()
pytestmark = pytest.mark.skipif(ci is None, reason="python3-clang is not installed "
                                                    "(tools/setup.sh --mutate)")


@pytest.fixture(scope="module")
def fixture_mutants():
    ms, data = mutations.mutants_of_file("01-sockets", FIXTURE, ci, rel="fixture.c")
    return {(m.op, m.line): m for m in ms}, data


def changed(mutant, data):
    """The diff's - and + lines, without their context."""
    return [l for l in mutant.diff(data).splitlines()[2:] if l[:1] in "+-"]


# (operator, line, the - and + lines of its diff)
EXPECTED = [
    ("drop-call", 20, ["-    a.sin_port = htons(port);", "+    a.sin_port = port;"]),
    ("drop-flag", 21, ["-    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);",
                       "+    int s = socket(AF_INET, SOCK_STREAM, 0);"]),
    ("drop-call", 25, ["-        signal(SIGPIPE, SIG_IGN);", "+        (void)0;"]),
    ("listen-backlog", 26, ["-    if (listen(s, 16) < 0)", "+    if (listen(s, 1) < 0)"]),
    ("cmp-strict", 26, ["-    if (listen(s, 16) < 0)", "+    if (listen(s, 16) <= 0)"]),
    ("collapse-loop", 28, ["-    while ((n = read(fd, buf, sizeof(buf))) != 0) {",
                           "+    do if ((n = read(fd, buf, sizeof(buf))) != 0) {",
                           "-    }", "+    } while (0);"]),
    ("shrink-sizeof", 28, ["-    while ((n = read(fd, buf, sizeof(buf))) != 0) {",
                           "+    while ((n = read(fd, buf, sizeof(buf) - 1)) != 0) {"]),
    ("drop-EINTR", 30, ["-            if (errno == EINTR)", "+            if (0)"]),
    ("drop-EAGAIN", 32, ["-            if (errno == EAGAIN || errno == EWOULDBLOCK)", "+            if (0 || 0)"]),
    ("cmp-strict", 36, ["-        if (n > LIMIT)", "+        if (n >= LIMIT)"]),
    ("bound-shift", 36, ["-        if (n > LIMIT)", "+        if (n > LIMIT + 1)"]),
    ("shrink-array", 38, ["-        char copy[LIMIT];", "+        char copy[(LIMIT) / 2];"]),
    ("nul-stop", 39, ["-        memcpy(copy, buf, (size_t)n);", "+        strncpy(copy, buf, (size_t)n);"]),
    ("nul-stop", 40, ['-        printf("%.*s\\n", (int)n, copy);', '+        printf("%s\\n", copy);']),
    ("drop-flag", 41, ["-        send(fd, copy, (size_t)n, MSG_NOSIGNAL);",
                       "+        send(fd, copy, (size_t)n, 0);"]),
    ("swap-shut-RDWR", 43, ["-    shutdown(fd, SHUT_WR);", "+    shutdown(fd, SHUT_RDWR);"]),
    ("drop-call", 44, ["-    close(s);", "+    (void)0;"]),
]


@pytest.mark.parametrize("op,line,lines", EXPECTED, ids=[f"{o}@{l}" for o, l, _ in EXPECTED])
def test_operator_makes_the_intended_mistake(fixture_mutants, op, line, lines):
    found, data = fixture_mutants
    assert (op, line) in found, f"no {op} mutant on line {line}; there are: {sorted(found)}"
    assert changed(found[(op, line)], data) == lines


def test_what_is_not_mutated(fixture_mutants):
    found, _ = fixture_mutants
    # `s < 0` with s from socket(): fd 0 is stdin, so `s <= 0` would be equivalent
    assert ("cmp-strict", 22) not in found
    # WIFEXITED(status) is a macro: what it expands to is not the program's text
    assert not any(line == 24 for _, line in found)


def test_ids_are_stable_and_distinct(fixture_mutants):
    found, _ = fixture_mutants
    ids = [m.id for m in found.values()]
    assert len(ids) == len(set(ids))
    again, _ = mutations.mutants_of_file("01-sockets", FIXTURE, ci, rel="fixture.c")
    assert sorted(ids) == sorted(m.id for m in again if (m.op, m.line) in found)
    m = found[("drop-call", 20)]
    assert m.id == f"01-sockets/fixture.c:20:18:drop-call:{m.hash}"   # hash of "htons(port)"


def test_every_mutant_of_the_fixture_is_valid_c(fixture_mutants, tmp_path):
    ms, data = mutations.mutants_of_file("01-sockets", FIXTURE, ci, rel="fixture.c")
    for m in ms:
        src = tmp_path / "m.c"
        src.write_bytes(m.apply(data))
        res = subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-fsyntax-only", str(src)],
                             capture_output=True, text=True)
        assert res.returncode == 0, f"{m.id} ({m.description}) is not C:\n{res.stderr}"


def test_equivalents_stale_and_wrong_records_are_told_apart():
    class M:
        def __init__(self, id_):
            self.id = id_
    entries = [{"id": "a", "status": "survived"}, {"id": "b", "status": "survived"},
               {"id": "c", "status": "killed", "killed_by": "test_x"}, {"id": "d", "status": "stillborn"}]
    record = mutate.finish({"mutants": entries}, 0, {"a": "same bytes on the wire", "c": "no", "gone": "old"},
                           [(M(i), b"") for i in "abcd"])
    status = {e["id"]: e["status"] for e in record["mutants"]}
    assert status == {"a": "equivalent", "b": "survived", "c": "killed", "d": "stillborn"}
    assert record["stale_equivalents"] == ["gone"]
    assert record["wrong_equivalents"] == ["c"]
    c = record["counts"]
    assert (c["mutants"], c["stillborn"], c["killed"], c["survived"], c["equivalent"]) == (4, 1, 1, 1, 1)
    assert c["kill_rate"] == 0.5


def test_a_killed_and_a_surviving_mutant_of_lesson_01(solutions_build):
    """htons() dropped in the server: the graders see the wrong port.  close(fd) dropped
    just before `return 0` in the client: exit closes it anyway, so it survives -- and
    is recorded as equivalent (solutions/01-sockets/equivalent-mutants.json)."""
    from grader.testrun import isolation_prefix
    pairs = mutations.mutants_of_lesson("01-sockets", ci)
    killed = [m.id for m, _ in pairs if m.file.endswith("server.c") and m.op == "drop-call"
              and "htons(port)" in m.description]
    survivor = [m.id for m, data in pairs if m.file.endswith("client.c") and m.op == "drop-call"
                and "close(fd)" in m.description and b"close(fd);\n    return 0;" in data]
    assert len(killed) == 1 and len(survivor) == 1
    grader = mutate.Grader(isolation_prefix())
    record = mutate.run_lesson("01-sockets", grader, solutions_build, jobs=2, timeout=slowed(60),
                               only=killed + survivor, progress=lambda *a: None, ci=ci)
    assert not record.get("error"), record.get("error")
    status = {e["id"]: e for e in record["mutants"]}
    assert status[killed[0]]["status"] == "killed", status[killed[0]]
    assert status[killed[0]]["killed_by"].startswith("test_server")
    assert status[survivor[0]]["status"] == "equivalent", status[survivor[0]]
    assert status[survivor[0]]["reason"] == mutate.load_equivalents("01-sockets")[survivor[0]]
    assert record["partial"] and record["counts"]["kill_rate"] == 1.0
    assert not record["stale_equivalents"] and not record["wrong_equivalents"]


def test_recorded_equivalents_name_mutants_that_exist():
    """Each solutions/NN-slug/equivalent-mutants.json parses, and names only mutants the
    solution has now: an edit above a recorded mutant changes its id (line, column), and
    the record must follow (./lab mutate NN --list shows the ids)."""
    from grader import lessons
    for lesson in lessons.all_lessons():
        recorded = mutate.load_equivalents(lesson.name)
        if not recorded:
            continue
        ids = {m.id for m, _ in mutations.mutants_of_lesson(lesson.name, ci)}
        stale = sorted(set(recorded) - ids)
        assert not stale, f"{lesson.name}: stale ids in {mutate.EQUIVALENTS}: {stale}"
