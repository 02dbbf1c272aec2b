"""The gradebook of a batch: built from the students' result.json files alone.

    OUT/gradebook.csv           one row per student
    OUT/gradebook.html          the table, then per-lesson score histograms and per-test
                                failure rates (inline SVG: no script, no CDN)
    OUT/students/<id>/index.html  one page per student: scores, notes, every test

Everything here is a function of the result.json files (sorted by student id) and, when
the batch was given one, OUT/roster.csv (a copy of `--roster`: names and emails beside the
ids, and a row for every roster student without a submission) -- never of when or where
they were graded: durations and dates are left out of the pages, so a
regrade that changes nothing, or a class graded in shards and merged (`./lab gradebook
merge`), gives byte-identical files.  What a submission wrote (ids, notes) is escaped
where it lands: HTML-escaped in pages, formula-proofed in CSV cells.
"""
import csv
import html
import json
import shutil
from pathlib import Path
from urllib.parse import quote

OLDEST_SCHEMA = 2       # result.json files this gradebook still reads (no per-test outcomes before 3)
ROSTER = "roster.csv"   # OUT's copy of the roster it was given
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A cell no spreadsheet takes for a formula: text starting with = + - @ tab or CR
    gets a leading apostrophe (OWASP's advice for CSV injection)."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# -- the roster -------------------------------------------------------------------------------

def read_roster(path):
    """[{id, name, email}] in the roster's order, from a CSV with a header row holding
    id, name and email (any order, any case, other columns ignored); refuses a roster
    without those columns or with an id twice."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
        missing = [c for c in ("id", "name", "email") if c not in fields]
        if missing:
            raise SystemExit(f"{path}: the roster needs the columns id, name, email (missing: {', '.join(missing)})")
        roster, seen = [], set()
        for row in reader:
            entry = {c: (row.get(fields[c]) or "").strip() for c in ("id", "name", "email")}
            if not entry["id"]:
                continue
            if entry["id"] in seen:
                raise SystemExit(f"{path}: the id {entry['id']!r} is in the roster twice")
            seen.add(entry["id"])
            roster.append(entry)
    return roster


def set_roster(out, path):
    """Keep a copy of the roster in OUT (checked, only its three columns), so every later
    rebuild of the gradebook has it."""
    roster = read_roster(path)
    with open(Path(out) / ROSTER, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "email"])
        w.writerows([p["id"], p["name"], p["email"]] for p in roster)
    return roster


def load_roster(out):
    """OUT's roster, or None when the batch was given none."""
    path = Path(out) / ROSTER
    return read_roster(path) if path.is_file() else None


def note_texts(result):
    return "; ".join(n["text"] for n in result.get("notes", []))


def load_results(out):
    """Every readable result.json under OUT/students, sorted by student id."""
    results = []
    for p in sorted((Path(out) / "students").glob("*/result.json")):
        try:
            r = json.loads(p.read_text())
        except ValueError:
            continue
        if isinstance(r, dict) and r.get("schema", 0) >= OLDEST_SCHEMA and "student" in r:
            results.append(r)
    return sorted(results, key=lambda r: r["student"])


def lesson_columns(results):
    return sorted({n for r in results for n in r.get("scores", {})})


def maxima_of(results, names):
    maxima = {}
    for r in results:
        for n in names:
            v = r.get("scores", {}).get(n)
            if v and v.get("max"):
                maxima[n] = max(maxima.get(n, 0), v["max"])
    return maxima


def score_of(result, lesson):
    v = result.get("scores", {}).get(lesson)
    return None if v is None else v["score"]


def student_href(student):
    return "students/" + quote(student, safe="") + "/index.html"


# -- statistics -----------------------------------------------------------------------------

def histogram(scores, most):
    """[(low, high, count)]: one bin per point up to 20 points, 10 even bins above."""
    if not most:
        return []
    bins = most + 1 if most <= 20 else 10
    width = (most + 1) / bins
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, int(s / width))] += 1
    return [(round(i * width), round((i + 1) * width) - 1, c) for i, c in enumerate(counts)]


def histogram_svg(bins, title):
    if not bins:
        return ""
    bar, gap, height = 24, 4, 120
    top = max(c for _, _, c in bins) or 1
    width = len(bins) * (bar + gap) + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
             f'role="img" aria-label="{html.escape(title)}">']
    for i, (lo, hi, c) in enumerate(bins):
        h = round(height * c / top)
        x = gap + i * (bar + gap)
        label = str(lo) if lo == hi else f"{lo}-{hi}"
        parts.append(f'<rect x="{x}" y="{height - h + 14}" width="{bar}" height="{h}" fill="#4a7">'
                     f'<title>{label} points: {c} students</title></rect>')
        if c:
            parts.append(f'<text x="{x + bar / 2}" y="{height - h + 11}" font-size="10" '
                         f'text-anchor="middle">{c}</text>')
        parts.append(f'<text x="{x + bar / 2}" y="{height + 28}" font-size="9" '
                     f'text-anchor="middle">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def test_stats(results):
    """[{lesson, nodeid, title, max, graded, failed, skipped}] over every student's tests,
    in lesson then test order; a skipped test counts neither as graded nor as failed."""
    stats = {}
    for r in results:
        for t in r.get("tests", []):
            s = stats.setdefault(t["nodeid"], {"lesson": t["lesson"], "nodeid": t["nodeid"], "title": t["title"],
                                               "max": t["max"], "index": t.get("index", 0), "graded": 0,
                                               "failed": 0, "skipped": 0})
            if t["outcome"] == "skipped":
                s["skipped"] += 1
            else:
                s["graded"] += 1
                s["failed"] += t["outcome"] == "failed"
    return sorted(stats.values(), key=lambda s: (s["lesson"], s["index"], s["nodeid"]))


def rate_bar(rate):
    w = round(100 * rate)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="102" height="12"><rect x="1" y="1" width="100" '
            f'height="10" fill="#eee"/><rect x="1" y="1" width="{w}" height="10" fill="#c44"/></svg>')


def statistics_html(results, names, maxima):
    parts = ["<h2>Scores per lesson</h2>"]
    for n in names:
        scores = [score_of(r, n) for r in results if score_of(r, n) is not None]
        if not scores:
            continue
        mean = sum(scores) / len(scores)
        median = sorted(scores)[len(scores) // 2]
        parts.append(f"<h3>{html.escape(n)}</h3><p>{len(scores)} students, out of {maxima.get(n, '?')}: "
                     f"mean {mean:.1f}, median {median}, full marks {sum(s == maxima.get(n) for s in scores)}</p>")
        parts.append(histogram_svg(histogram(scores, maxima.get(n, 0)), f"{n}: students per score"))
    stats = test_stats(results)
    if stats:
        parts.append("<h2>Failure rate per test</h2><p>Failed among the students graded on the test "
                     "(a skipped test counts for neither).</p><table><tr><th>lesson</th><th>test</th>"
                     "<th>points</th><th>failed</th><th></th><th>skipped</th></tr>")
        for s in stats:
            rate = s["failed"] / s["graded"] if s["graded"] else 0.0
            parts.append(f"<tr><td>{html.escape(s['lesson'])}</td><td>{html.escape(s['title'])}</td>"
                         f"<td>{s['max']}</td><td>{s['failed']}/{s['graded']} ({100 * rate:.0f}%)</td>"
                         f"<td>{rate_bar(rate)}</td><td>{s['skipped'] or ''}</td></tr>")
        parts.append("</table>")
    return "\n".join(parts)


# -- pages ----------------------------------------------------------------------------------

STYLE = ("body{font-family:sans-serif} td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left}"
         " td:first-child{white-space:nowrap} .full,.passed{background:#dfd} .part,.failed{background:#fee} .skipped{background:#eee}")


def student_page(r, maxima, person=None):
    e = html.escape
    rows = "".join(f"<tr><td>{e(n)}</td><td>{v['score']}</td><td>{v['max'] if v['max'] is not None else '?'}</td>"
                   f"</tr>" for n, v in sorted(r.get("scores", {}).items()))
    notes = "".join(f"<li>{e(n['kind'])}: {e(n['text'])}</li>" for n in r.get("notes", []))
    tests = "".join(
        f"<tr class={e(t['outcome'])}><td>{e(t['lesson'])}</td><td>{e(t['title'])}</td><td>{e(t['outcome'])}</td>"
        f"<td>{t['points']}/{t['max']}</td><td>{e(t.get('note', ''))}</td></tr>" for t in r.get("tests", []))
    extra = ""
    if r.get("commits"):
        extra += "<h2>Graded commits</h2><ul>" + "".join(
            f"<li>{e(n)}: " + (f"{e(c['sha'])} of {e(c['time'])}" + (
                f", {c['days_late']} days late, -{c['penalty_percent']:g}%" if c.get("days_late") else "")
                if c else "no commit before the deadline") + "</li>"
            for n, c in sorted(r["commits"].items())) + "</ul>"
    return f"""<!doctype html>
<meta charset="utf-8"><title>socklab: {e(r['student'])}</title>
<style>{STYLE}</style>
<p><a href="../../gradebook.html">gradebook</a> · <a href="report.txt">full report</a></p>
<h1>{e(r['student'])}</h1>{f"<p>{e(person['name'])} &lt;{e(person['email'])}&gt;</p>" if person else ""}
<p>total {r.get('total', 0)} of {sum(maxima.values())}; compiled: {'yes' if r.get('compiled') else 'no'}</p>
<table><tr><th>lesson</th><th>score</th><th>of</th></tr>{rows}</table>
<h2>Notes</h2><ul>{notes or '<li>none</li>'}</ul>{extra}
<h2>Tests</h2>
<table><tr><th>lesson</th><th>test</th><th>outcome</th><th>points</th><th>note</th></tr>{tests}</table>
"""


def write(out, results=None):
    """Write gradebook.csv, gradebook.html and every student's index.html in OUT from the
    result.json files there (or `results`); returns the results written."""
    out = Path(out)
    results = sorted(results if results is not None else load_results(out), key=lambda r: r["student"])
    names = lesson_columns(results)
    maxima = maxima_of(results, names)
    most = sum(maxima.values())
    roster = load_roster(out)
    people = {p["id"]: p for p in roster or []}
    graded = {r["student"] for r in results}
    # one row per student: the graded, and the roster's students who handed in nothing
    rows_of = sorted([(r["student"], r) for r in results] +
                     [(p["id"], None) for p in roster or [] if p["id"] not in graded], key=lambda x: x[0])
    who = ["name", "email"] if roster is not None else []
    with open(out / "gradebook.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *who, *names, "total", "max", "notes"])
        for student, r in rows_of:
            person = [people.get(student, {}).get(k, "") for k in who]
            if r is None:
                w.writerow([csv_cell(c) for c in (student, *person, *[""] * len(names), "", most, "no submission")])
                continue
            cells = [score_of(r, n) for n in names]
            w.writerow([csv_cell(c) for c in (student, *person, *["" if c is None else c for c in cells],
                                              r.get("total", 0), most, note_texts(r))])
    rows = []
    for student, r in rows_of:
        name = f"<td>{html.escape(people.get(student, {}).get('name', ''))}</td>" if roster is not None else ""
        if r is None:
            rows.append(f"<tr><td>{html.escape(student)}</td>{name}{'<td></td>' * len(names)}<td></td>"
                        f"<td>no submission</td></tr>")
            continue
        cells = "".join(
            f"<td class={'full' if score_of(r, n) == maxima.get(n) else 'part'}>"
            f"{'' if score_of(r, n) is None else score_of(r, n)}</td>" for n in names)
        rows.append(f"<tr><td><a href='{html.escape(student_href(r['student']))}'>"
                    f"{html.escape(r['student'])}</a></td>{name}{cells}<td><b>{r.get('total', 0)}</b></td>"
                    f"<td>{html.escape(note_texts(r))}</td></tr>")
    head = ("<th>name</th>" if roster is not None else "") + "".join(
        f"<th>{html.escape(n)}<br><small>/{maxima.get(n, '?')}</small></th>" for n in names)
    extra = "".join(f"\n{part}" for part in extra_sections(out))
    (out / "gradebook.html").write_text(f"""<!doctype html>
<meta charset="utf-8"><title>socklab gradebook</title>
<style>{STYLE}</style>
<h1>socklab gradebook</h1><p>{len(results)} submissions, maximum {most} points.{roster_line(roster, graded)}</p>
<table><tr><th>student</th>{head}<th>total</th><th>notes</th></tr>
{chr(10).join(rows)}
</table>
{statistics_html(results, names, maxima)}{extra}
""")
    for r in results:
        sdir = out / "students" / r["student"]
        if sdir.is_dir():
            (sdir / "index.html").write_text(student_page(r, maxima, people.get(r["student"])))
    return results


def roster_line(roster, graded):
    if roster is None:
        return ""
    ids = {p["id"] for p in roster}
    return (f" Roster: {len(roster)} students, {len(ids - graded)} without a submission, "
            f"{len(graded - ids)} graded but not in it.")


def extra_sections(out):
    """HTML other reports left for the gradebook page (the similarity report)."""
    f = Path(out) / "similarity.html.part"
    return [f.read_text()] if f.is_file() else []


# -- merging result trees --------------------------------------------------------------------

def _identity(r):
    """What makes two results of one student the same grading (durations aside)."""
    return json.dumps([r.get("fingerprint"), r.get("scores"), r.get("total"),
                       [(t["nodeid"], t["outcome"], t["points"]) for t in r.get("tests", [])]], sort_keys=True)


def merge(out, dirs, roster=None):
    """`./lab gradebook merge OUT DIR... [--roster CSV]`: every student of the DIRs' (and
    OUT's own) students/ trees into OUT, then OUT's gradebook.  A student found in two
    places with different gradings is refused, naming both, before anything is written.
    The roster is the one given, else the first a DIR kept."""
    out = Path(out).resolve()
    found = {}
    for d in [out, *[Path(d).resolve() for d in dirs]]:
        if d == out and not (out / "students").is_dir():
            continue
        if not (d / "students").is_dir():
            raise SystemExit(f"{d}: no students/ folder (not the --out of a batch)")
        for r in load_results(d):
            found.setdefault(r["student"], []).append((d, r))
    conflicts = []
    for student, places in sorted(found.items()):
        first = places[0]
        for d, r in places[1:]:
            if d != first[0] and _identity(r) != _identity(first[1]):
                conflicts.append(f"'{student}' in {first[0]} and {d} differ")
    if conflicts:
        raise SystemExit("conflicting results, nothing merged: " + "; ".join(conflicts))
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    if roster:
        set_roster(out, roster)
    elif not (out / ROSTER).is_file():
        kept = next((Path(d) / ROSTER for d in dirs if (Path(d) / ROSTER).is_file()), None)
        if kept:
            set_roster(out, kept)
    for student, places in sorted(found.items()):
        d, _ = places[0]
        if d == out:
            continue
        src, dest = d / "students" / student, out / "students" / student
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("index.html"))
    from grader import similarity
    similarity.write(out)
    results = write(out)
    print(f"merged {len(results)} students from {len(dirs)} folders into {out / 'gradebook.csv'}")
    return 0
