"""Ladder diagrams and socket-state timelines as inline SVG (for ./lab report's page).

    to_svg(ladder, ident="t3-c1")     # the same rows as ladder.to_text, drawn
    timeline_svg(changes, who, end, ident="t3-s")

No script, no external file: an <svg> element to paste into a page.  Every text a
student (or their program) controls is escaped.  The pictures read without colour:
direction is the arrowhead, an RST is also a dashed, heavier line with its name on it,
a state's name is written in its bar; each arrow and bar has a <title> (a tooltip), and
each picture a <title> and <desc> that screen readers announce.
"""
from html import escape

from grader import ladder as ld

WIDTH = 860
TIME_X = 64                  # right edge of the time column
LEFT_X, RIGHT_X = 190, 700   # the two endpoints' lines
SLANT = 10                   # an arrow drops this much: time passes while it flies
MAX_ROWS = 60
CHAR = 7.0                   # width of a 12px monospace character, roughly

BLUE, GREEN, RED, GREY = "#1f4e9c", "#2e6b30", "#b3261e", "#555555"
STATE_FILL = {"ESTAB": "#d8ecd9", "LISTEN": "#e4e4e4", "SYN-SENT": "#dbe6f6", "SYN-RECV": "#dbe6f6",
              "FIN-WAIT-1": "#fbe3c7", "FIN-WAIT-2": "#fbe3c7", "CLOSING": "#fbe3c7",
              "TIME-WAIT": "#f6d2a8", "CLOSE-WAIT": "#e7d9f2", "LAST-ACK": "#e7d9f2",
              "CLOSED": "#f1f1f1"}
FONT = "font-family:ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace"


def _ms(t):
    return f"{max(t, 0) * 1000:.1f} ms" if t < 100 else f"{t:.1f} s"


def _text(x, y, s, anchor="middle", size=12, weight="normal", fill="#111", extra=""):
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'font-weight="{weight}" fill="{fill}"{extra}>{escape(s)}</text>')


def _badge(x, y, s, anchor):
    w = len(s) * CHAR + 10
    left = x if anchor == "start" else x - w
    fill = STATE_FILL.get(s, "#eeeeee")
    return (f'<g><title>{escape("state: " + s)}</title>'
            f'<rect x="{left:.1f}" y="{y - 13:.1f}" width="{w:.1f}" height="18" rx="4" '
            f'fill="{fill}" stroke="{GREY}"/>' + _text(left + w / 2, y, s, size=11) + "</g>")


def to_svg(ladder, ident, max_rows=MAX_ROWS):
    """One conversation as an <svg> element."""
    rows = ld.elide(ladder.rows, max_rows)
    y = 56
    body = []
    for i, row in enumerate(rows):
        if row is None:
            hidden = ladder.rows[i:len(ladder.rows) - (len(rows) - i - 1)]
            n = sum(1 for r in hidden if r.kind == ld.ARROW)
            body.append(_text((LEFT_X + RIGHT_X) / 2, y + 16, f"⋮  {n} more not shown  ⋮", fill=GREY))
            y += 26
            continue
        if row.kind == ld.ARROW:
            # label, then the arrow dropping SLANT as it crosses, then the payload under it
            body.append(_text(TIME_X, y + 20, _ms(row.time), anchor="end", size=11, fill=GREY))
            colour = RED if row.reset else (BLUE if row.rightward else GREEN)
            x1, x2 = (LEFT_X, RIGHT_X - 2) if row.rightward else (RIGHT_X, LEFT_X + 2)
            dash = ' stroke-dasharray="7 3"' if row.reset else ""
            tip = row.label + (f"  {row.detail}" if row.detail else "")
            body.append(
                f'<g class="arrow"><title>{escape(tip)}</title>'
                + _text((LEFT_X + RIGHT_X) / 2, y + 12, row.label, fill=colour,
                        weight="bold" if row.reset else "normal")
                + f'<line x1="{x1}" y1="{y + 17}" x2="{x2}" y2="{y + 17 + SLANT}" stroke="{colour}" '
                  f'stroke-width="{3 if row.reset else 1.6}"{dash} '
                  f'marker-end="url(#{ident}-{"rst" if row.reset else ("r" if row.rightward else "l")})"/>')
            if row.detail:
                body.append(_text((LEFT_X + RIGHT_X) / 2, y + 17 + SLANT + 14, row.detail, size=11,
                                  fill="#333"))
                y += 21                     # room enough that it reads as this arrow's
            body.append("</g>")
            y += 25 + SLANT
        elif row.kind == ld.GAP:
            body.append(_text(TIME_X, y + 16, _ms(row.time), anchor="end", size=11, fill=GREY))
            body.append(f'<line x1="{LEFT_X}" y1="{y + 18}" x2="{RIGHT_X}" y2="{y + 18}" stroke="{GREY}" '
                        f'stroke-dasharray="2 4"/>'
                        + _text((LEFT_X + RIGHT_X) / 2, y + 12, row.label, size=11, fill=GREY))
            y += 26
        else:
            body.append(_text(TIME_X, y + 16, _ms(row.time), anchor="end", size=11, fill=GREY))
            for text, x, anchor in ((row.left, LEFT_X + 6, "start"), (row.right, RIGHT_X - 6, "end")):
                if not text:
                    continue
                if row.kind == ld.STATES:
                    body.append(_badge(x, y + 16, text, anchor))
                else:
                    body.append(_text(x, y + 16, text, anchor=anchor, size=11, fill=GREY,
                                      extra=' font-style="italic"'))
            y += 24
    height = y + 10
    head = []
    for x, label in ((LEFT_X, ladder.left), (RIGHT_X, ladder.right)):
        w = min(len(label) * CHAR + 16, 300)
        head.append(f'<rect x="{x - w / 2:.1f}" y="8" width="{w:.1f}" height="26" rx="5" fill="#f7f7f7" '
                    f'stroke="{GREY}"/>' + _text(x, 26, label, weight="bold"))
        head.append(f'<line x1="{x}" y1="34" x2="{x}" y2="{height - 6}" stroke="{GREY}" stroke-width="2"/>')
    head.append(_text(TIME_X, 52, "time", anchor="end", size=11, fill=GREY))
    markers = "".join(
        f'<marker id="{ident}-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" '
        f'markerWidth="11" markerHeight="11" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        for name, colour in (("r", BLUE), ("l", GREEN), ("rst", RED)))
    summary = (f"Ladder diagram of {ladder.title}: {len(ladder.arrows)} "
               f"{'segments' if ladder.source == 'capture' else 'events'} between {ladder.left} (left) "
               f"and {ladder.right} (right), time going down.")
    text_version = ld.to_text(ladder, width=100, unicode=True, max_rows=max_rows)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="ladder" role="img" '
            f'aria-labelledby="{ident}-title {ident}-desc" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" style="{FONT}">'
            f'<title id="{ident}-title">{escape(summary)}</title>'
            f'<desc id="{ident}-desc">{escape(text_version)}</desc>'
            f"<defs>{markers}</defs>" + "".join(head) + "".join(body) + "</svg>")


def spans(changes, end):
    """{(local, peer): [(start, stop, state)]} from sampled changes; open spans end at `end`."""
    out, open_ = {}, {}
    for c in changes:
        key = (c.local, c.peer)
        if key in open_:
            start, state = open_.pop(key)
            out.setdefault(key, []).append((start, c.time, state))
        if c.state:
            open_[key] = (c.time, c.state)
        else:
            out.setdefault(key, [])
    for key, (start, state) in open_.items():
        out.setdefault(key, []).append((start, max(end, start), state))
    return out


def timeline_svg(changes, who, end, ident):
    """One row per socket, its states as bars along the test's time; None if no states."""
    rows = spans(changes, end)
    if not rows:
        return None
    # from the first state seen to the end: the test's quiet start is not worth the width
    begin = min([start for bars in rows.values() for start, _, _ in bars] or [0.0])
    end = max([end] + [stop for bars in rows.values() for _, stop, _ in bars])
    span = max(end - begin, 0.001)
    label_w, top, row_h = 330, 30, 28
    plot = WIDTH - label_w - 20
    height = top + row_h * len(rows) + 24

    def x(t):
        return label_w + plot * max(t - begin, 0) / span

    body = [_text(label_w, 18, _ms(begin), anchor="start", size=11, fill=GREY),
            _text(WIDTH - 20, 18, _ms(end), anchor="end", size=11, fill=GREY)]
    for i, ((local, peer), bars) in enumerate(rows.items()):
        y = top + i * row_h
        name = f"{who(local)} {ld.endpoint(*local)} → {ld.endpoint(*peer)}"
        body.append(_text(label_w - 8, y + 16, name, anchor="end", size=11))
        for start, stop, state in bars:
            w = max(x(stop) - x(start), 3)
            fill = STATE_FILL.get(state, "#eeeeee")
            tip = f"{name}: {state} from {_ms(start)} to {_ms(stop)}"
            label = _text(x(start) + w / 2, y + 16, state, size=10) if w > len(state) * 6.2 + 6 else ""
            body.append(f'<g><title>{escape(tip)}</title><rect x="{x(start):.1f}" y="{y + 3}" '
                        f'width="{w:.1f}" height="20" fill="{fill}" stroke="{GREY}"/>{label}</g>')
    summary = "Socket states over time, as the grader sampled them: " + timeline_text(rows, who)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" '
            f'aria-labelledby="{ident}-title" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" style="{FONT}">'
            f'<title id="{ident}-title">{escape(summary)}</title>' + "".join(body) + "</svg>")


def timeline_text(rows, who):
    """The timeline in words: its text alternative."""
    return "; ".join(f"{who(local)} {ld.endpoint(*local)}: " +
                     (", ".join(f"{state} at {_ms(start)}" for start, _, state in bars) or "gone")
                     for (local, _), bars in rows.items())
