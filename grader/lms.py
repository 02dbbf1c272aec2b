"""`./lab gradebook export OUT --roster ROSTER.csv --format canvas|moodle [--to FILE]`:
the gradebook of OUT as a CSV file a learning management system imports.

ROSTER.csv maps the batch's student ids (the submissions' names) to people: a header
row with `id`, `name` and `email` (other columns are ignored), one row per student.
Without --roster, the roster the batch kept (OUT/roster.csv, from `batch --roster`).

canvas  Canvas's gradebook import: `Student`, `ID`, `SIS User ID`, `SIS Login ID`,
        `Section`, then one column per lesson, and a `Points Possible` row under the
        header.  Canvas matches a row by its SIS User ID or SIS Login ID; the roster's id
        goes in the first, its email in the second; Canvas's own numeric ID is left empty.
moodle  Moodle's CSV grade import: `First name`, `Last name`, `ID number`,
        `Email address`, then one column per lesson; on import, map "Email address" to
        "useremail" (or "ID number" to "useridnumber").

A roster student with no result gets empty cells (no submission: the LMS keeps what it
has); a graded student missing from the roster is named on the terminal and left out,
since the LMS could not match the row.
"""
import csv
from pathlib import Path

from grader import gradebook

FORMATS = ("canvas", "moodle")


read_roster = gradebook.read_roster


def split_name(name):
    """'Ada King Lovelace' -> ('Ada King', 'Lovelace'); 'Lovelace, Ada' -> ('Ada', 'Lovelace')."""
    if "," in name:
        last, first = (x.strip() for x in name.split(",", 1))
        return first, last
    parts = name.rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else ("", name)


def rows(out, roster, fmt):
    results = {r["student"]: r for r in gradebook.load_results(out)}
    names = gradebook.lesson_columns(list(results.values()))
    maxima = gradebook.maxima_of(list(results.values()), names)
    columns = [f"socklab {n}" for n in names]
    cell = gradebook.csv_cell
    table = []
    if fmt == "canvas":
        table.append(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *columns])
        table.append(["Points Possible", "", "", "", "", *[maxima.get(n, "") for n in names]])
    else:
        table.append(["First name", "Last name", "ID number", "Email address", *columns])
    for person in roster:
        r = results.get(person["id"])
        scores = ["" if r is None or gradebook.score_of(r, n) is None else gradebook.score_of(r, n) for n in names]
        if fmt == "canvas":
            table.append([cell(person["name"]), "", cell(person["id"]), cell(person["email"]), "", *scores])
        else:
            first, last = split_name(person["name"])
            table.append([cell(first), cell(last), cell(person["id"]), cell(person["email"]), *scores])
    unknown = sorted(set(results) - {p["id"] for p in roster})
    return table, unknown


def export(out, roster_path, fmt, to=None):
    out = Path(out)
    if fmt not in FORMATS:
        raise SystemExit(f"--format must be one of {', '.join(FORMATS)}")
    if not (out / "students").is_dir():
        raise SystemExit(f"{out}: no students/ folder (not the --out of a batch)")
    if roster_path is None:
        roster_path = out / gradebook.ROSTER
        if not roster_path.is_file():
            raise SystemExit(f"--roster: {out} keeps no roster (the batch had no --roster); give one")
    roster = read_roster(roster_path)
    table, unknown = rows(out, roster, fmt)
    to = Path(to) if to else out / f"{fmt}.csv"
    with open(to, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(table)
    missing = [p["id"] for p in roster if not (out / "students" / p["id"] / "result.json").is_file()]
    print(f"{fmt}: {len(roster)} students of the roster in {to}" +
          (f"; no result for {len(missing)}: {', '.join(missing[:10])}" if missing else ""))
    if unknown:
        print(f"not in the roster, so left out: {', '.join(unknown)}")
    return 0
