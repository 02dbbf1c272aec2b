#!/usr/bin/python3
"""Generate a class of lesson-01 submissions to try ./lab batch at scale (issue 18).

    tools/make-class.py OUT_DIR [--students 30]

OUT_DIR/submissions/ gets one entry per student, OUT_DIR/deadlines.toml a deadline for
lesson 01 (2026-10-01T23:59+02:00, 2 late days, 10% a day) and OUT_DIR/roster.csv.  The
class, in turns until --students are made:

  copy-N      the reference solution, byte for byte (flagged by the similarity report)
  disguise-N  the reference with other names, no comments, other layout (flagged)
  bug-N       the reference with one of tests/selftest's known mistakes (a wrong-* patch)
  alt-N       the alternative correct solution (getaddrinfo), shared by all alt-N (paired)
  partial-N   the skeleton with addr.c done
  broken-N    server.c does not compile
  skeleton-N  the skeleton untouched
  ontime-N    a git repository: done before the deadline, broken by a commit after the late days
  late-N      a git repository: addr.c before the deadline, the rest 30 hours late (-20%)

The graded code comes from the reference solution and its self-test variants, so the
similarity report flags most of the class; the point is the machinery, not the data.
"""
import argparse
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOL = REPO / "solutions" / "01-sockets"
SKEL = REPO / "chapters" / "01-sockets"
SELFTEST = REPO / "tests" / "selftest" / "01-sockets"
DUE = "2026-10-01T23:59:00+02:00"


def disguise(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    for old, new in (("listen_fd", "sock"), ("greet", "say_hello"), ("peer_len", "plen"), ("conn", "c"),
                     ("address", "where"), ("bound", "me"), ("line", "buf"), ("fd", "s")):
        text = re.sub(rf"\b{old}\b", new, text)
    return text.replace("    ", "\t")


def files(dest, sources):
    lesson = dest / "chapters" / "01-sockets"
    lesson.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (lesson / name).write_text(text)


def repo(dest, versions):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(dest), "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "s",
           "GIT_AUTHOR_EMAIL": "s@x", "GIT_COMMITTER_NAME": "s", "GIT_COMMITTER_EMAIL": "s@x"}
    dest.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, env=env, check=True)
    for when, sources in versions:
        files(dest, sources)
        subprocess.run(["git", "add", "-A"], cwd=dest, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "work"], cwd=dest, check=True,
                       env={**env, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--students", type=int, default=30)
    args = p.parse_args()
    out = Path(args.out)
    subs = out / "submissions"
    subs.mkdir(parents=True)
    sol = {f.name: f.read_text() for f in SOL.glob("*.c")}
    skel = {f.name: f.read_text() for f in SKEL.glob("*.c")}
    alt = {f.name: f.read_text() for f in (SELFTEST / "good-getaddrinfo").glob("*.c")}
    patches = sorted(SELFTEST.glob("wrong-*/*.c.patch"))
    kinds = ["copy", "disguise", "bug", "alt", "partial", "broken", "skeleton", "ontime", "late"]
    made = []
    for i in range(args.students):
        kind, n = kinds[i % len(kinds)], i // len(kinds) + 1
        student = f"{kind}-{n}"
        dest = subs / student
        if kind == "copy":
            if n % 2:
                files(dest, sol)
            else:                                   # a zip, as some students hand in
                with zipfile.ZipFile(subs / f"{student}.zip", "w") as z:
                    for name, text in sol.items():
                        z.writestr(f"socklab/chapters/01-sockets/{name}", text)
        elif kind == "disguise":
            files(dest, {k: disguise(v) for k, v in sol.items()})
        elif kind == "bug":
            patch = patches[(n - 1) % len(patches)]
            files(dest, sol)
            target = dest / "chapters" / "01-sockets" / patch.name.removesuffix(".patch")
            subprocess.run(["patch", "--quiet", str(target), str(patch)], check=True)
        elif kind == "alt":
            files(dest, alt)
        elif kind == "partial":
            files(dest, {**skel, "addr.c": sol["addr.c"]})
        elif kind == "broken":
            files(dest, {**sol, "server.c": "int main(void) { return 0 }\n"})
        elif kind == "skeleton":
            files(dest, skel)
        elif kind == "ontime":
            repo(dest, [("2026-09-30T12:00:00Z", sol), ("2026-10-09T12:00:00Z", {"server.c": skel["server.c"]})])
        elif kind == "late":
            repo(dest, [("2026-09-30T12:00:00Z", {**skel, "addr.c": sol["addr.c"]}),
                        ("2026-10-03T03:59:00Z", sol)])
        made.append(student)
    (out / "deadlines.toml").write_text(f"[01]\ndue = {DUE}\nlate_days = 2\npenalty = 10\n")
    (out / "roster.csv").write_text("id,name,email\n" + "".join(
        f"{s},Student {s.title()},{s}@example.org\n" for s in made))
    print(f"{len(made)} submissions in {subs}; deadlines.toml and roster.csv in {out}")


if __name__ == "__main__":
    main()
