"""A failing program, end to end: its ladder in the terminal report, its pcap, its
Gradescope Markdown, and ./lab report's HTML page -- screenshotted by headless Chromium
to see that the diagram really renders.  And the lessons' diagrams, drawn again from
fresh captures of the reference programs, still say what the READMEs say.

The program is tests/selftest/06-shutdown/wrong-close-instead-of-shutdown: it calls
close() where shutdown(SHUT_WR) was needed, with a reply unread, so its kernel resets
the connection.  That RST must be in every picture.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader import html_report
from conftest import tcpdump_read, slowed
from test_selftests import build_case

REPO = Path(__file__).resolve().parent.parent
CASE = REPO / "tests" / "selftest" / "06-shutdown" / "wrong-close-instead-of-shutdown"
TEST = "test_client_half_closes_after_stdin_ends"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
RST_RED, GRADER_BLUE = (0xB3, 0x26, 0x1E), (0x1F, 0x4E, 0x9C)     # grader/ladder_svg.py


@pytest.fixture(scope="module")
def graded(solutions_build, tmp_path_factory):
    """The case graded once: (raw results, Gradescope results, build directory)."""
    tmp = tmp_path_factory.mktemp("wrong-close")
    build_case(CASE, solutions_build, tmp / "build")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--tb=no", "-p", "no:xdist", "-c", REPO / "pytest.ini",
         "--rootdir", REPO, "--build-dir", tmp / "build", "--raw-results", tmp / "raw.json",
         "--results-json", tmp / "results.json", REPO / "chapters" / "06-shutdown"],
        cwd=REPO, capture_output=True, text=True, timeout=slowed(240), env=dict(os.environ, LANG="C.UTF-8"))
    raw = json.loads((tmp / "raw.json").read_text())
    return raw, json.loads((tmp / "results.json").read_text()), tmp, run.stdout


def failing(raw):
    [(nodeid, result)] = [(k, r) for k, r in raw.items() if k.endswith("::" + TEST)]
    assert result["outcome"] == "failed", result
    return result


def needs_capture():
    if os.geteuid() != 0:
        pytest.skip("the graders capture packets only in a namespace of their own (./lab test "
                    "runs the tests under unshare -r) or as root")


def test_the_terminal_report_draws_the_reset(graded):
    needs_capture()
    raw, _, _, stdout = graded
    text = failing(raw)["text"]
    ladder = text.split("ladder    ", 1)[1].split("\npcap", 1)[0]
    assert ladder.startswith("captured: TCP 127.0.0.1:")
    assert "◀════" in ladder and "RST-ACK seq" in ladder, ladder
    assert "─ SYN seq 0 ─" in ladder and "'Hi, data1\\n'" in ladder
    board = stdout[stdout.index("✗ 06 shutdown"):]
    drawn = board[board.index("  ladder"):board.index("  pcap")].splitlines()
    assert len(drawn) > 10 and max(len(line) for line in drawn) <= 80, "\n".join(drawn)


def test_its_pcap_is_kept_and_tcpdump_reads_the_reset(graded):
    needs_capture()
    result = failing(graded[0])
    pcap = Path(result["wire"]).with_name(TEST + ".pcap")
    assert pcap.is_file() and pcap.stat().st_size < 64 << 10
    if not shutil.which("tcpdump"):
        pytest.skip("tcpdump is not installed")
    out = tcpdump_read(pcap)
    assert "Flags [R.]" in out.stdout, out.stdout + out.stderr


def test_gradescope_gets_the_diagram_as_markdown(graded):
    needs_capture()
    [test] = [t for t in graded[1]["tests"] if t["status"] == "failed" and t["output_format"] == "md"
              and "half-closes" in t["name"]]
    assert "**ladder**\n\n```text\n" in test["output"] and "RST-ACK" in test["output"]


@pytest.fixture(scope="module")
def page(graded):
    needs_capture()
    raw, _, tmp, _ = graded
    return html_report.write("06-shutdown", tmp / "raw.json", tmp / "report", "student")


def test_the_html_page_is_self_contained_and_has_text_alternatives(page):
    html = page.read_text()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<link" not in html
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="ladder" role="img"') >= 8
    assert "RST-ACK seq" in html and "✗ failed" in html and "✓ passed" in html
    assert html.count("<title id=") == html.count("aria-labelledby=") - html.count('<section')
    pcap_link = f'href="06-shutdown/{TEST}.pcap"'
    assert pcap_link in html and (page.parent / "06-shutdown" / f"{TEST}.pcap").is_file()


def chromium():
    """Debian's chromium (and Pillow to read its screenshot): `./lab test` installs them
    before the tests start (as root: tools/setup.sh --report); else a skip that says how."""
    found = shutil.which("chromium")
    if found and importlib.util.find_spec("PIL"):
        return found
    pytest.skip("headless Chromium is not installed: sudo bash tools/setup.sh --report")


def screenshot(page, out, tmp_path, size="1000,1800"):
    res = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          f"--window-size={size}", f"--screenshot={out}", page.as_uri()],
                         capture_output=True, text=True, timeout=slowed(120), stdin=subprocess.DEVNULL)
    assert out.is_file(), res.stderr[-2000:]
    return out


def test_the_page_renders_its_diagram_in_headless_chromium(page, tmp_path):
    shot = screenshot(page, tmp_path / "page.png", tmp_path)
    from PIL import Image
    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50, "the screenshot is (nearly) blank"
    counts = {rgb: n for n, rgb in colours}
    # arrowheads are filled triangles: exact colour pixels, not just anti-aliased edges
    assert counts.get(RST_RED, 0) > 30, "no RST arrow rendered (red)"
    assert counts.get(GRADER_BLUE, 0) > 30, "no grader→program arrow rendered (blue)"


def test_diagrams_match_fresh_captures(solutions_build):
    """Each README diagram says what the kernel does today: `./lab diagrams --check` runs
    every scene again (about 8 s: the keep-alive one waits on its timers)."""
    if not shutil.which("iptables"):
        pytest.skip("iptables is not installed (the keep-alive scene drops packets with it)")
    res = subprocess.run([REPO / "lab", "diagrams", "--check"], cwd=REPO, capture_output=True,
                         text=True, timeout=slowed(120), stdin=subprocess.DEVNULL)
    if "a private network namespace is needed" in res.stderr:
        pytest.skip("no network namespace here: " + res.stderr.strip().splitlines()[-1])
    assert res.returncode == 0, res.stdout + res.stderr
    if "not replayed" in res.stdout:
        pytest.skip(res.stdout.strip())


def test_lab_report_prints_where_the_page_is_and_check_copies_pcaps(tmp_path, solutions_build):
    if os.geteuid() != 0 and subprocess.run(["unshare", "-r", "-n", "true"]).returncode != 0:
        pytest.skip("no namespaces here: the graders capture nothing")
    env = dict(os.environ, SOCKLAB_STATE_DIR=str(tmp_path / "state"), NO_COLOR="1")
    only = ["06", "--solutions", "--only", TEST]

    def lab(*args):
        res = subprocess.run([REPO / "lab", *args], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=slowed(240), stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return res.stdout
    out = lab("check", *only, "--pcap", str(tmp_path / "caps"))
    assert f"pcap: 1 capture(s) copied to {tmp_path / 'caps'}/" in out
    assert (tmp_path / "caps" / "06-shutdown" / f"{TEST}.pcap").stat().st_size > 24
    out = lab("report", *only, "--out", str(tmp_path / "pages"))
    page = tmp_path / "pages" / "06-shutdown.html"
    assert f"report: {page}" in out and page.is_file()
    assert (tmp_path / "pages" / "06-shutdown" / f"{TEST}.pcap").is_file()
