"""./lab report LESSON -- check a lesson and draw the run as one self-contained HTML page.

    ./lab report 06                  build/reports/06-shutdown.html (and its pcaps beside it)
    ./lab report 06 --solutions      the same for the reference solutions

Per test: its verdict and points, expected / happened / hint, every conversation on the
wire as a ladder diagram (inline SVG, with a text version), the TCP states the grader
saw as a timeline, the programs' output, and a link to the test's pcap.  No script and
nothing fetched: inline SVG and CSS only, so the page opens from disk, offline, and
can be mailed to a tutor with its folder.  It reads without colour (verdicts are words,
arrows have heads and labels) and every picture has a text alternative.
"""
import html
import json
import shutil
import time
from pathlib import Path

from grader import ladder as ld
from grader import ladder_svg, lessons, states, wire

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "build" / "reports"
MAX_LADDERS = 8              # conversations drawn per test; the pcap has them all
PROSE = ("expected", "happened", "hint", "problem", "where")
VERDICT = {"passed": "✓ passed", "failed": "✗ failed", "skipped": "– skipped"}

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #111; background: #fff; margin: 0 auto;
       max-width: 900px; padding: 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.15em; border-top: 2px solid #ccc; padding-top: .8em; margin-top: 1.6em; }
h3 { font-size: 1em; margin: 1.2em 0 .3em; }
.meta { color: #444; margin-top: 0; }
.verdict { font-weight: bold; padding: 0 .3em; border: 1px solid; border-radius: 3px; }
.passed .verdict { color: #1d5e20; } .failed .verdict { color: #9e1c14; }
.skipped .verdict { color: #6b5400; }
.points { float: right; font-weight: normal; margin-left: 1em; }
dl.why { display: grid; grid-template-columns: 6.5em 1fr; gap: .3em .8em; }
dl.why dt { font-weight: bold; } dl.why dd { margin: 0; }
pre { background: #f5f5f5; border: 1px solid #ddd; padding: .5em; overflow-x: auto;
      font-size: 12.5px; white-space: pre; }
figure { margin: .6em 0 1em; } figcaption { font-size: .9em; color: #333; }
svg { max-width: 100%; height: auto; display: block; }
nav ol { padding-left: 1.2em; } nav li { margin: .1em 0; }
details > summary { cursor: pointer; color: #1f4e9c; }
"""


def _e(text):
    return html.escape(str(text))


def _wire_html(result, tid, out_dir, lesson):
    """The ladders, state timeline, programs and pcap link of one test."""
    path = result.get("wire")
    if not path or not Path(path).is_file():
        return "<p>(nothing was recorded on the wire for this test)</p>"
    w, record = wire.load(path)
    parts = []
    if record.get("pcap"):
        pcap = Path(path).with_name(record["pcap"])
        (out_dir / lesson).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pcap, out_dir / lesson / pcap.name)
        parts.append(f'<p>Packets: <a href="{_e(lesson)}/{_e(pcap.name)}" download>{_e(pcap.name)}</a> '
                     "(open it with Wireshark, or <code>tcpdump -nr FILE</code>)</p>")
    ladders = ld.conversations(w)
    if ladders:
        parts.append("<h3>On the wire</h3>")
        for i, lad in enumerate(ladders[:MAX_LADDERS], 1):
            how = "captured packets" if lad.source == "capture" else "as the grader's socket saw it"
            parts.append(f"<figure>{ladder_svg.to_svg(lad, f'{tid}-c{i}')}"
                         f"<figcaption>{_e(lad.title)} ({how}); time goes down."
                         f"<details><summary>the same as text</summary><pre>"
                         f"{_e(ld.to_text(lad, width=100, max_rows=200))}</pre></details>"
                         "</figcaption></figure>")
        if len(ladders) > MAX_LADDERS:
            parts.append(f"<p>… and {len(ladders) - MAX_LADDERS} more conversations (the pcap has "
                         "every packet).</p>")
    end = max([l.end for l in ladders] + [c.time for c in w.changes] + [w.until])
    timeline = ladder_svg.timeline_svg(w.changes, lambda ep: ld.who(w, ep), end, f"{tid}-s")
    if timeline:
        words = ladder_svg.timeline_text(ladder_svg.spans(w.changes, end), lambda ep: ld.who(w, ep))
        parts.append("<h3>Socket states the grader saw</h3><figure>" + timeline +
                     "<figcaption>One row per socket of the grader's connections (both ends), "
                     f"sampled every {states.INTERVAL * 1000:g} to {states.SLOWEST * 1000:g} ms and whenever "
                     "the grader opened one; "
                     "hover a bar for its times."
                     f"<details><summary>the same as text</summary><p>{_e(words)}</p></details>"
                     "</figcaption></figure>")
    for prog in record.get("programs", []):
        parts.append(f"<h3>Program <code>{_e(prog['command'])}</code> — {_e(prog['status'])}</h3>")
        for stream in ("stdout", "stderr"):
            text = "\n".join(prog[stream]) or "(empty)"
            parts.append(f"<p><b>{stream}</b> (last lines)</p><pre>{_e(text)}</pre>")
    return "\n".join(parts)


def _test_html(result, tid, out_dir, lesson):
    outcome = result["outcome"]
    points = f"{result['points'] if outcome == 'passed' else 0}/{result['points']} points"
    out = [f'<section class="test {outcome}" id="{tid}" aria-labelledby="{tid}-h">',
           f'<h2 id="{tid}-h"><span class="verdict">{VERDICT[outcome]}</span> {_e(result["title"])}'
           f'<span class="points">{points}</span></h2>']
    sections = result.get("sections") or []
    why = [(t, x) for t, x in sections if t in PROSE]
    if why:
        out.append('<dl class="why">' + "".join(f"<dt>{_e(t)}</dt><dd>{_e(x)}</dd>" for t, x in why) + "</dl>")
    elif outcome == "failed" and result.get("text"):
        out.append(f"<pre>{_e(result['text'])}</pre>")
    elif outcome == "skipped":
        out.append(f"<p>{_e(result.get('text', ''))}</p>")
    if result.get("measured"):
        out.append(f"<p><b>measured</b>: {_e(result['measured'])}</p>")
    recorded = result.get("wire") and Path(result["wire"]).is_file()
    drawn = ("ladder", "pcap") + (("program", "stdout", "stderr") if recorded else ())
    rest = [(t, x) for t, x in sections if t not in PROSE and t not in drawn]
    if rest:
        out.append("<h3>What the grader reported</h3>" +
                   "".join(f"<p><b>{_e(t)}</b></p><pre>{_e(x)}</pre>" for t, x in rest))
    details = _wire_html(result, tid, out_dir, lesson)
    if outcome == "failed":
        out.append(details)
    else:
        out.append(f"<details><summary>the wire, the states and the programs</summary>{details}</details>")
    out.append("</section>")
    return "\n".join(out)


def write(lesson, raw_results, out_dir=REPORTS, variant="student"):
    """Write out_dir/<lesson>.html from one run's raw results; returns its path."""
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir / lesson, ignore_errors=True)     # the captures of an earlier run
    results = [r for r in json.loads(Path(raw_results).read_text()).values() if r.get("lesson") == lesson]
    results.sort(key=lambda r: r.get("index", 0))
    score = sum(r["points"] for r in results if r["outcome"] == "passed")
    maximum = sum(r["points"] for r in results if r["outcome"] != "skipped")
    counts = {k: sum(1 for r in results if r["outcome"] == k) for k in VERDICT}
    title = f"{lesson.replace('-', ' ', 1)}"
    nav = "".join(f'<li><a href="#t{i}">{VERDICT[r["outcome"]]}</a> {_e(r["title"])}</li>'
                  for i, r in enumerate(results, 1))
    body = "\n".join(_test_html(r, f"t{i}", out_dir, lesson) for i, r in enumerate(results, 1))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>socklab report: {_e(title)}</title>
<style>{CSS}</style></head>
<body><header><h1>socklab report: {_e(title)}</h1>
<p class="meta">{time.strftime('%Y-%m-%d %H:%M')} · {_e(variant)} build · score {score}/{maximum} ·
{counts['passed']} passed, {counts['failed']} failed{f", {counts['skipped']} skipped" if counts['skipped'] else ""}</p>
<nav aria-label="tests"><ol>{nav}</ol></nav></header>
<main>
{body}
</main></body></html>
"""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{lesson}.html"
    path.write_text(page)
    return path


# -- ./lab report ----------------------------------------------------------------------

def add_parser(sub):
    r = sub.add_parser("report", help="check a lesson and write its run as an HTML page")
    r.add_argument("lesson", nargs="?")
    r.add_argument("--solutions", action="store_true", help="grade the reference solutions")
    r.add_argument("--sanitize", action="store_true", help="build and grade with ASan+UBSan")
    r.add_argument("-k", help="only tests whose name matches (pytest -k)")
    r.add_argument("--only", metavar="TEST", help="only this one test case")
    r.add_argument("--out", default=str(REPORTS), help="directory for the pages (default build/reports)")
    return r


def shown(path):
    """path as the user would type it: relative to where they are, if it is below."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
