"""Similar submissions, per program, with Debian's similarity-tester (`sim_c`).

The batch keeps the C files it took from each submission in OUT/students/<id>/src/
(lesson/file.c).  For each program of a lesson (each *.c of the lesson's skeleton), every
student's copy that is not the unchanged skeleton is compared with every other and with
the reference solution by `sim_c -p -e -a -s`, which reports, for each ordered pair, how
much of file F is found in file G ("F consists for x % of G material"), comparing token
runs (at least 24 tokens): layout, comments, identifiers, numbers and strings do not
matter, so renamed variables and reformatting do not hide a copy.

    OUT/similarity.csv        kind,lesson,program,student,other,student_in_other,other_in_student
    OUT/similarity.html.part  the section gradebook.html shows

A pair is reported when either percentage reaches PAIR_PERCENT; a student's program is
flagged `identical` to the reference solution when its bytes are the solution's, and
`near-identical` when both percentages with the solution reach REFERENCE_PERCENT.  A
report is a lead for a human, never a verdict: short programs written from one skeleton
to one contract look alike (the skeleton's share of each file is shown too).

sim_c reads the submissions' text: it runs on copies under names we choose (never a
student's), and, as root, as the unprivileged `nobody`.
"""
import csv
import html
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from grader import host

REPO = Path(__file__).resolve().parent.parent
PAIR_PERCENT = 60
REFERENCE_PERCENT = 90
SKELETON_PERCENT = 95       # both ways with the skeleton: the skeleton, unchanged
NOBODY = 65534
MOST_SHOWN = 100        # findings listed in gradebook.html (all are in similarity.csv)
LINE = re.compile(r"^(\S+) consists for (\d+) % of (\S+) material$", re.M)


def available():
    return shutil.which("sim_c") is not None


def programs(out):
    """{(lesson, file.c): {student: path}} of the sources kept in OUT."""
    found = {}
    for src in sorted(Path(out).glob("students/*/src")):
        student = src.parent.name
        for f in sorted(src.glob("*/*.c")):
            if f.is_file() and not f.is_symlink():
                found.setdefault((f.parent.name, f.name), {})[student] = f
    return found


def run_sim(files):
    """{(i, j): percent of file i found in file j} over the list of files."""
    with tempfile.TemporaryDirectory(prefix="socklab-sim-") as tmp:
        names = []
        for i, f in enumerate(files):
            name = os.path.join(tmp, f"{i}.c")
            shutil.copyfile(f, name)
            names.append(name)
        become = None
        if host.real_root():        # the root of `unshare -r` has no other uid to become
            for p in [tmp, *names]:
                os.chown(p, NOBODY, NOBODY)
            from grader import identity
            become = lambda: identity.become(NOBODY)      # noqa: E731
        res = subprocess.run(["sim_c", "-p", "-e", "-a", "-s", "-t", "1", "-T", *[f"{i}.c" for i in range(len(files))]],
                             cwd=tmp, capture_output=True, text=True, timeout=600, preexec_fn=become,
                             stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(f"sim_c failed: {res.stderr.strip()[:200]}")
    percent = {}
    for a, x, b in LINE.findall(res.stdout):
        i, j = int(a.removesuffix(".c")), int(b.removesuffix(".c"))
        percent[(i, j)] = max(percent.get((i, j), 0), int(x))
    return percent


def analyse(out):
    """[row]: the pairs and the reference flags, sorted."""
    rows = []
    for (lesson, program), by_student in sorted(programs(out).items()):
        skeleton = REPO / "chapters" / lesson / program
        reference = REPO / "solutions" / lesson / program
        students = sorted(by_student)
        files = [by_student[s] for s in students]
        extra = [p for p in (skeleton, reference) if p.is_file()]
        percent = run_sim(files + extra)
        sk = len(files) if skeleton.is_file() else None
        ref = len(files) + (1 if sk is not None else 0) if reference.is_file() else None
        share = {i: percent.get((i, sk), 0) if sk is not None else 0 for i in range(len(files))}
        unchanged = {i for i in range(len(files)) if sk is not None and
                     (files[i].read_bytes() == skeleton.read_bytes() or
                      min(percent.get((i, sk), 0), percent.get((sk, i), 0)) >= SKELETON_PERCENT)}
        for i, s in enumerate(students):
            if i in unchanged or ref is None:
                continue
            if files[i].read_bytes() == reference.read_bytes():
                rows.append(("reference-identical", lesson, program, s, "reference", 100, 100, share[i]))
            elif min(percent.get((i, ref), 0), percent.get((ref, i), 0)) >= REFERENCE_PERCENT:
                rows.append(("reference-near", lesson, program, s, "reference", percent.get((i, ref), 0),
                             percent.get((ref, i), 0), share[i]))
        for i in range(len(files)):
            for j in range(i + 1, len(files)):
                if i in unchanged or j in unchanged:
                    continue
                a, b = percent.get((i, j), 0), percent.get((j, i), 0)
                if max(a, b) >= PAIR_PERCENT:
                    rows.append(("pair", lesson, program, students[i], students[j], a, b, max(share[i], share[j])))
    order = {"reference-identical": 0, "reference-near": 1, "pair": 2}
    return sorted(rows, key=lambda r: (order[r[0]], -max(r[5], r[6]), r[1], r[2], r[3], r[4]))


def write(out):
    """similarity.csv and the gradebook's section; returns the rows, or None without sim_c."""
    from grader.gradebook import csv_cell
    out = Path(out)
    part = out / "similarity.html.part"
    if not available():
        part.write_text("<h2>Similarity</h2><p>Not checked: Debian's similarity-tester (sim_c) is not "
                        "installed (tools/setup.sh --similarity).</p>")
        print("note: similarity not checked: sim_c is not installed (tools/setup.sh --similarity)")
        return None
    rows = analyse(out)
    with open(out / "similarity.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "lesson", "program", "student", "other", "student_in_other", "other_in_student",
                    "skeleton_share"])
        for r in rows:
            w.writerow([csv_cell(c) for c in r])
    e = html.escape
    words = {"reference-identical": "identical to the reference solution",
             "reference-near": "near-identical to the reference solution", "pair": "similar"}
    body = "".join(
        f"<tr class={'failed' if k != 'pair' else 'part'}><td>{e(lesson)}/{e(program)}</td><td>{e(s)}</td>"
        f"<td>{e(words[k]) if k != 'pair' else 'similar to ' + e(o)}</td><td>{a}%</td><td>{b}%</td>"
        f"<td>{sk}%</td></tr>" for k, lesson, program, s, o, a, b, sk in rows[:MOST_SHOWN])
    if len(rows) > MOST_SHOWN:
        body += f"<tr><td colspan=6>... {len(rows) - MOST_SHOWN} more in similarity.csv</td></tr>"
    summary = {}
    for k, lesson, program, a, b, *_ in rows:
        for who, other in ((a, b), (b, a)) if k == "pair" else ((a, None),):
            e_ = summary.setdefault(who, {"reference-identical": [], "reference-near": [], "pair": set()})
            if k == "pair":
                e_["pair"].add(other)
            else:
                e_[k].append(program)
    by_student = "".join(
        f"<tr><td>{e(who)}</td><td>{e(', '.join(v['reference-identical']))}</td>"
        f"<td>{e(', '.join(v['reference-near']))}</td><td>{len(v['pair']) or ''}</td></tr>"
        for who, v in sorted(summary.items()))
    part.write_text(
        "<h2>Similarity</h2><p>Per program, by Debian's similarity-tester (<code>sim_c -p -e -a</code>: token "
        f"runs, so renaming and layout do not matter). Pairs where one file has {PAIR_PERCENT}% or more of "
        f"the other's material; programs identical to the reference solution, or both ways {REFERENCE_PERCENT}% "
        "alike. The skeleton's share: how much of the file is the skeleton everybody started from. A lead "
        "for a human, not a verdict. Also in similarity.csv.</p>"
        + (f"<h3>By student</h3><table><tr><th>student</th><th>identical to the reference</th>"
           f"<th>near-identical to the reference</th><th>similar to how many students</th></tr>{by_student}</table>"
           f"<h3>Findings</h3>" if rows else "")
        + (f"<table><tr><th>program</th><th>student</th><th>what</th><th>student in other</th>"
           f"<th>other in student</th><th>skeleton share</th></tr>{body}</table>" if rows else
           "<p>Nothing similar found.</p>"))
    return rows
