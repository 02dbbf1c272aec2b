"""Grader for chapter 11 -- the remote shell (after lesson 06).

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  Server tests: the grader is the client and speaks the protocol
itself (request lines, length-prefixed reply frames).  Client tests: the grader is the
server.  End-to-end tests run both programs.  The server always starts in a directory
tree the test made (lab.tmp/home), so every reply is known in advance.
"""
import os
import re
import signal
import struct

from grader import GradeFailure, contract, expect, expect_asleep, points, poll_until

SERVER, CLIENT = "server", "client"
REPLY_MAX = 1 << 20
TOP = ["Zeta.md", "a.txt", "b.txt", "my dir", "sub"]      # sorted by byte value: 'Z' < 'a'
SUB = ["inner.txt"]
INJECTIONS = [
    "cd ; touch pwned",
    "ls $(touch pwned)",
    'cd "x"; rm -rf',
    "pwd; touch pwned",
    "ls && touch pwned",
    "`touch pwned`",
    "ls | touch pwned",
]
WAITS_FOR_REPLY = (" (the grader answers only after the FIN: a client that waits for the reply "
                   "before it reads the next stdin line never gets there)")
FRAME_HINT = ("every reply is one frame: a 4-byte length in network byte order, then exactly that "
              "many bytes -- write_frame() does both (README, \"Requests are lines, replies are frames\")")


# -- the directory tree the server runs in -------------------------------------

def make_home(lab, extra_files=0):
    """lab.tmp/home with a known tree; returns its real path (what getcwd reports)."""
    home = os.path.join(lab.tmp, "home")
    os.makedirs(os.path.join(home, "sub"))
    os.makedirs(os.path.join(home, "my dir"))
    for name in ("a.txt", "b.txt", "Zeta.md", ".hidden", "sub/inner.txt", "my dir/x"):
        with open(os.path.join(home, name), "w") as f:
            f.write("socklab\n")
    for name in long_names(extra_files):
        open(os.path.join(home, "sub", name), "w").close()
    return os.path.realpath(home)


def long_names(count):
    """count file names of 200 bytes each (few files, yet a listing of many kB)."""
    return [f"file-{i:04d}-" + "x" * 190 for i in range(count)]


def listing(names):
    return "".join(n + "\n" for n in sorted(names))


def deep_path(home, total):
    """A relative path of directories below home whose absolute path is `total` bytes."""
    left = total - len(home) - 1
    parts = []
    while left > 0:
        size = min(200, left) if left - min(200, left) != 1 else 199     # no part of 0 bytes
        parts.append(f"d{len(parts):02d}".ljust(size, "y")[:size])
        left -= size + 1
    return "/".join(parts)


def make_files(directory, sizes):
    """Empty files in `directory`, one per size: distinct names of exactly that many bytes."""
    os.makedirs(directory)
    names = []
    for i, size in enumerate(sizes):
        names.append(f"{i:05d}".ljust(size, "n"))
        open(os.path.join(directory, names[-1]), "w").close()
    return names


def planted_files(home):
    """Files or directories an injected shell command would have created or removed."""
    found = []
    for root, dirs, files in os.walk(os.path.dirname(home)):
        found += [os.path.join(root, n) for n in dirs + files if n == "pwned"]
    return found


# -- the grader as a client of the student's server ------------------------------

def start_server(lab, home):
    port = lab.port()
    prog = lab.start(SERVER, port, cwd=home)
    prog.expect_line(rf"listening on {port}", timeout=2.0,
                     expected=f"the server prints `listening on {port}` once it listens",
                     hint="listen first, then print the line (stdout is line-buffered for you)")
    return prog, port


class Shell:
    """A raw connection to the server: send one request line, read one reply frame."""

    def __init__(self, lab, port, **kw):
        self.peer = lab.connect(port, **kw)

    def ask(self, command, timeout=2.0):
        self.peer.send(command + "\n")
        return self.read_reply(command, timeout)

    def read_reply(self, command, timeout=2.0):
        head = self.peer.recv_exactly(4, timeout=timeout,
                                      what=f"the reply to `{command}`: a 4-byte length prefix first",
                                      hint="reply to every request line with exactly one frame, "
                                           "even when the reply is empty (cd) or an error")
        (n,) = struct.unpack("!I", head)
        if n > REPLY_MAX:
            raise GradeFailure(
                expected=f"the reply to `{command}` starts with its length (network byte order, "
                         f"at most {REPLY_MAX} bytes)",
                happened=f"the first 4 bytes {head!r} say {n} bytes"
                         + (f"; read as little-endian they say {struct.unpack('<I', head)[0]}: "
                            "htonl() was forgotten" if struct.unpack("<I", head)[0] <= REPLY_MAX else
                            ": that is text, not a length prefix"),
                hint=FRAME_HINT)
        body = self.peer.recv_exactly(n, timeout=timeout,
                                      what=f"the {n} bytes the reply to `{command}` announced",
                                      hint=FRAME_HINT)
        return body.decode("utf-8", "replace")


def expect_reply(shell, command, want, hint=None):
    got = shell.ask(command)
    expect(got == want,
           expected=f"`{command}` is answered with {want!r}",
           happened=f"the reply was {got!r}", hint=hint)


def expect_error(shell, command, pattern="", hint=None):
    got = shell.ask(command)
    expect(got.startswith("error: ") and got.endswith("\n") and re.search(pattern, got),
           expected=f"`{command}` is answered with one line `error: …`"
                    + (f" matching /{pattern}/" if pattern else ""),
           happened=f"the reply was {got!r}", hint=hint)
    return got


# -- the grader as the server of the student's client ------------------------------

def frame(text):
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("!I", len(data)) + data


def start_client(lab, stdin=None):
    listener = lab.listen()
    prog = lab.start(CLIENT, "127.0.0.1", listener.port, stdin=stdin)
    peer = listener.accept(program=prog, hint="the client connects to HOST PORT from its arguments")
    return prog, peer


def send_to_client(client, server, chunk, expected, hint, **how):
    """Send to the client; if it died meanwhile (the grader's send then fails), say so."""
    try:
        server.send(chunk, **how)
    except GradeFailure:
        client.wait_exit(0.3)
        raise GradeFailure(expected=expected, happened=f"it stopped reading: it {client.status()}",
                           hint=hint) from None


def expect_command(peer, text, hint=None):
    got = peer.recv_line(what=f"the command line `{text}` from the client",
                         hint=hint or "send each command line typed on stdin, with its '\\n'")
    expect(got == text, expected=f"the command line `{text}`", happened=f"got `{got}`", hint=hint)


def lines_until(prog, last, timeout=2.0, expected=None, hint=None):
    """Every stdout line from the current position through the line `last`."""
    start = prog.cursor
    prog.expect_line(re.escape(last), timeout=timeout, expected=expected, hint=hint)
    return [t.strip() for _, t, _ in prog.stdout_lines[start:prog.cursor]]


def expect_lines(prog, want, expected, hint=None, timeout=2.0):
    got = lines_until(prog, want[-1], timeout=timeout, expected=expected, hint=hint)
    if got == want:
        return
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    raise GradeFailure(expected=expected,
                       happened=f"{len(got)} lines instead of {len(want)}; the first difference is at "
                                f"line {first + 1}: expected {want[first]!r}, got "
                                f"{got[first] if first < len(got) else '(nothing)'!r}",
                       hint=hint)


# == server ========================================================================

@points(3)
@contract("server", "listens on 0.0.0.0", "the absolute path of the current directory", "DIR = everything after", "sorted by byte value")
def test_server_runs_pwd_ls_and_cd(lab):
    """server: pwd, ls and cd give the expected replies, and cd changes what pwd and ls see"""
    home = make_home(lab)
    _, port = start_server(lab, home)
    sh = Shell(lab, port)
    expect_reply(sh, "pwd", home + "\n",
                 hint="getcwd(), then the path and a '\\n' as the reply payload")
    expect_reply(sh, "ls", listing(TOP),
                 hint="opendir(\".\")/readdir(), skip names starting with '.', sort with strcmp "
                      "(byte order: 'Z' sorts before 'a'), one name and '\\n' each")
    expect_reply(sh, "cd sub", "", hint="a successful cd replies with an empty frame (length 0)")
    expect_reply(sh, "pwd", home + "/sub\n", hint="chdir() changes the server's own directory")
    expect_reply(sh, "ls", listing(SUB))
    expect_reply(sh, "cd ..", "")
    expect_reply(sh, "cd my dir", "",
                 hint="DIR is the rest of the line after `cd `, spaces included: no quoting rules")
    expect_reply(sh, "pwd", home + "/my dir\n")
    expect_reply(sh, "cd " + home, "", hint="an absolute DIR works too")
    expect_reply(sh, "pwd", home + "\n")


@points(2)
@contract("server", "DIR = everything after")
def test_server_cd_to_a_missing_directory_reports_an_error_and_stays(lab):
    """server: cd into a missing directory (or a file) replies an error and keeps the old directory"""
    home = make_home(lab)
    _, port = start_server(lab, home)
    sh = Shell(lab, port)
    expect_reply(sh, "cd sub", "")
    expect_error(sh, "cd nowhere", r"No such file or directory",
                 hint="when chdir() fails, reply `error: cd: DIR: <strerror(errno)>` -- the "
                      "client must see that nothing happened")
    expect_reply(sh, "pwd", home + "/sub\n", hint="a failed chdir() leaves the directory as it was")
    expect_error(sh, "cd inner.txt", r"Not a directory")
    expect_error(sh, "cd", hint="`cd` without a directory is an error (we don't go to $HOME)")
    expect_reply(sh, "pwd", home + "/sub\n")
    expect_reply(sh, "ls", listing(SUB), hint="the server is still in its old directory")


@points(1)
@contract("server", "anything else")
def test_server_matches_commands_exactly(lab):
    """server: commands match exactly -- `l`, `p`, `pw`, `lsx` and an empty line are unknown"""
    home = make_home(lab)
    _, port = start_server(lab, home)
    sh = Shell(lab, port)
    for cmd in ("l", "p", "pw", "lsx", "pwdx", "PWD", "", "cdsub", "ls -l"):
        expect_error(sh, cmd, "^" + re.escape(f"error: unknown command '{cmd}'") + r"\n$",
                     hint="compare the whole line: strcmp(line, \"ls\"). strncmp(line, \"ls\", n) "
                          "with n = the line's length makes `l` (and an empty line) match `ls`")
    expect_reply(sh, "pwd", home + "\n", hint="after an unknown command the connection stays usable")


@points(1)
@contract("server", "never runs a shell")
def test_server_ls_runs_no_program(lab):
    """server: `ls` reads the directory itself -- it starts no `ls` program, not even a fixed one"""
    home = make_home(lab)
    trap = os.path.join(lab.tmp, "trap")
    os.makedirs(trap)
    os.chmod(trap, 0o755)
    for name in ("ls", "sh", "dir"):
        path = os.path.join(trap, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho 'socklab-trap: the server started a program'\n")
        os.chmod(path, 0o755)
    port = lab.port()
    prog = lab.start(SERVER, port, cwd=home, env={"PATH": trap + ":" + os.environ.get("PATH", "/usr/bin:/bin")})
    prog.expect_line(rf"listening on {port}", timeout=2.0)
    sh = Shell(lab, port)
    got = sh.ask("ls")
    expect(got == listing(TOP),
           expected="`ls` is answered with the sorted names, read with opendir()/readdir()",
           happened="the server started the program `ls` (a fake one put first in its PATH answered)"
                    if "socklab-trap" in got else f"the reply was {got!r}",
           hint="popen(\"ls\") starts /bin/sh and then ls: two programs per request, whose output "
                "depends on the locale. Read the directory yourself: opendir, readdir, qsort")


@points(2)
@contract("server", "answers every request line")
def test_server_answers_split_and_pipelined_requests(lab):
    """server: a request split over several segments, or several in one, each get their reply"""
    home = make_home(lab)
    _, port = start_server(lab, home)
    sh = Shell(lab, port)
    hint = ("one read() is not one request: it may return part of a line, or several lines. "
            "Read lines with read_line(), which keeps what follows a '\\n' for the next call")
    sh.peer.send("pwd\n", pieces=1, delay=0.01)
    got = sh.read_reply("pwd (sent one byte at a time)")
    expect(got == home + "\n", expected="`pwd` sent one byte per segment is answered with the path",
           happened=f"the reply was {got!r}", hint=hint)
    sh.peer.send("cd sub\npwd\nls\n")
    for command, want in (("cd sub", ""), ("pwd", home + "/sub\n"), ("ls", listing(SUB))):
        got = sh.read_reply(f"{command} (three requests sent in one segment)")
        expect(got == want,
               expected=f"`cd sub`, `pwd`, `ls` sent together get three replies, in order; "
                        f"the one to `{command}` is {want!r}",
               happened=f"the reply to `{command}` was {got!r}", hint=hint)


@points(1)
@contract("server", "a request of up to 4095 bytes", "answers every request line", "DIR = everything after",
          "the absolute path of the current directory")
def test_server_request_limits_and_line_ends(lab):
    """server: a 4095-byte request is carried out, a longer one refused; `pwd\\r\\n`, `cd ` and a 4095-byte path work"""
    home = make_home(lab)
    _, port = start_server(lab, home)
    sh = Shell(lab, port)
    longest = "cd " + "x" * 4092                       # 4095 bytes: the longest request allowed
    got = sh.ask(longest)
    expect(got.startswith("error: cd: xxx") and "File name too long" in got,
           expected="a request of exactly 4095 bytes (`cd ` and 4092 x) is carried out: chdir fails "
                    "with `error: cd: xxx…: File name too long`",
           happened=f"the reply was {got[:80]!r}" + ("…" if len(got) > 80 else ""),
           hint="4095 bytes of request, then '\\n' and the NUL: the line buffer needs 4097 bytes "
                "(read_line(lr, line, sizeof(line)) with char line[4095 + 2])")
    expect_error(sh, longest + "x", r"^error: request longer than 4095 bytes\n$",
                 hint="a line of 4096 bytes or more is answered with that one error line")
    expect_reply(sh, "pwd", home + "\n",
                 hint="after an overlong request, the next line is the next request")
    sh.peer.send("pwd\r\n")
    got = sh.read_reply("pwd\\r\\n")
    expect(got == home + "\n", expected="`pwd\\r\\n` (a line ending in CRLF) is answered like `pwd`",
           happened=f"the reply was {got!r}", hint="drop a '\\r' just before the '\\n'")
    expect_error(sh, "cd ", r"^error: cd: missing directory\n$",
                 hint="`cd ` with nothing after the space has no directory either")
    deep = deep_path(home, 4095)        # the longest path Linux allows: 4095 bytes and the NUL
    os.makedirs(os.path.join(home, deep))
    expect_reply(sh, "cd " + deep, "")
    expect_reply(sh, "pwd", f"{home}/{deep}\n",
                 hint="a path can be up to PATH_MAX (4096) bytes long, its NUL included: give "
                      "getcwd() a buffer of PATH_MAX bytes")


@points(3)
@contract("server", "never runs a shell")
def test_server_injection_attempts_do_nothing(lab):
    """server: shell syntax in a request (`;`, `$(…)`, quotes, backquotes, `|`) runs nothing"""
    home = make_home(lab)
    _, port = start_server(lab, home)
    sh = Shell(lab, port)
    for attempt in INJECTIONS:
        got = sh.ask(attempt)
        planted = planted_files(home)
        expect(not planted,
               expected=f"`{attempt}` runs no other program: no file `pwned` appears",
               happened=lambda: f"after `{attempt}` (reply {got!r}) the file {planted[0]} exists: "
                                "a shell ran the rest of the line",
               hint="never hand a request to system(), popen() or sh -c: the shell reads ;, $(…), "
                    "quotes and | as commands. Do the work yourself: getcwd, chdir, opendir")
        expect(got.startswith("error: "),
               expected=f"`{attempt}` is answered with `error: …` (no such directory, or an "
                        "unknown command)",
               happened=f"the reply was {got!r}",
               hint="commands match exactly; DIR is taken literally, so chdir(\"; touch pwned\") "
                    "simply fails")
    expect(all(os.path.exists(os.path.join(home, n)) for n in ("a.txt", "b.txt", "sub/inner.txt")),
           expected="every file of the tree is still there", happened="some were removed")
    expect_reply(sh, "pwd", home + "\n", hint="none of the attempts may change the directory")


@points(2)
@contract("server", "answers every request line", "sorted by byte value")
def test_server_sends_a_long_ls_as_one_whole_frame(lab):
    """server: an ls longer than any single read arrives whole, in one frame"""
    home = make_home(lab, extra_files=600)
    _, port = start_server(lab, home)
    sh = Shell(lab, port)
    expect_reply(sh, "cd sub", "")
    want = listing(SUB + long_names(600))
    got = sh.ask("ls", timeout=3.0)
    expect(got == want,
           expected=f"one frame of {len(want)} bytes with the 601 names, sorted",
           happened=f"a frame of {len(got)} bytes" + ("" if len(got) != len(want) else
                                                       " with different contents"),
           hint="collect the whole listing first, then send it as one frame; write_frame() "
                "finishes a short write")
    expect_reply(sh, "pwd", home + "/sub\n", hint="after the long reply, the next reply follows at once")


@points(1)
@contract("server", "empty reply (a frame of length 0)", "A listing of up to 1 MiB")
def test_server_ls_replies_from_empty_to_1_mib(lab):
    """server: ls of an empty directory is an empty frame, of exactly 1 MiB one whole frame, never longer"""
    home = make_home(lab)
    os.makedirs(os.path.join(home, "empty"))
    server, port = start_server(lab, home)
    sh = Shell(lab, port)
    expect_reply(sh, "cd empty", "")
    try:
        expect_reply(sh, "ls", "", hint="a directory with nothing visible in it: a frame of length 0")
    except GradeFailure as e:
        if server.wait_exit(0.3) is not None:
            e.happened += f"; the server {server.status()}"
            e.hint = ("with no names the list is empty (maybe still NULL): loops over it must run 0 "
                      "times -- `i < count`, not `i <= count`")
        raise
    # made only now (4097 files take a while): a server that cannot list an empty folder is done
    # 4095 lines of 256 bytes, one of 127 and one of 129: exactly 1 MiB
    names = make_files(os.path.join(home, "big"), [255] * 4095 + [126, 128])
    expect_reply(sh, "cd ../big", "")
    got = sh.ask("ls", timeout=5.0)
    expect(got == listing(names),
           expected=f"a listing of exactly 1 MiB ({REPLY_MAX} bytes, 4097 names) is sent whole, in "
                    "one frame",
           happened=f"the reply was {len(got)} bytes: {got[:60]!r}",
           hint="1 MiB is the largest reply allowed, not too large: refuse a reply only when it "
                "would grow past REPLY_MAX (`>`, not `>=`)")
    longer = names[-2] + "n"                    # one byte more: 1 MiB + 1
    os.rename(os.path.join(home, "big", names[-2]), os.path.join(home, "big", longer))
    sh.peer.send("ls\n")
    head = sh.peer.recv_exactly(4, timeout=5.0, what="the reply to `ls` of 1 MiB + 1 byte of names")
    (n,) = struct.unpack("!I", head)
    expect(n <= REPLY_MAX,
           expected="once one name is a byte longer, the listing (1 MiB + 1 byte) does not fit a "
                    f"reply: the reply is at most {REPLY_MAX} bytes (an `error: ls: …` line, say)",
           happened=f"a frame of {n} bytes",
           hint="a reply may hold at most 1 MiB (REPLY_MAX) bytes, not one more: check the size "
                "before each append (`>`), and answer with an error line when the listing would "
                "not fit")
    sh.peer.recv_exactly(n, timeout=5.0, what=f"the {n} bytes the reply announced")
    expect_reply(sh, "pwd", home + "/big\n", hint="after the refused listing the session goes on")


@points(1)
@contract("server", "memory each request used")
def test_server_memory_does_not_grow_with_requests(lab):
    """server: 400 `ls` of a directory of 1000 names leave its memory where it was"""
    home = make_home(lab)
    names = make_files(os.path.join(home, "many"), [6] * 1000)
    server, port = start_server(lab, home)
    sh = Shell(lab, port)
    expect_reply(sh, "cd many", "")
    want = listing(names)

    def ls_times(count):
        for start in range(0, count, 50):
            sh.peer.send("ls\n" * 50)          # pipelined: the server answers them in turn
            for i in range(50):
                got = sh.read_reply(f"ls (request {start + i + 1} of {count}, sent 50 at a time)")
                if got != want:
                    raise GradeFailure(expected=f"each `ls` is answered with the {len(names)} names",
                                       happened=f"reply {start + i + 1} was {len(got)} bytes: {got[:60]!r}")
    ls_times(50)                                # the allocator settles
    before = server.rss_kib()
    ls_times(400)
    grown = server.rss_kib() - before
    expect(grown < 1536,
           expected="after 400 more `ls` the server's memory (VmRSS) has grown by less than 1.5 MiB",
           happened=f"it grew by {grown / 1024:.1f} MiB, about {grown * 1024 / 400:.0f} bytes per "
                    "request that are never given back",
           hint="free() what each request allocated: every strdup()ed name, and the array of names")


@points(2)
@contract("server", "serves one client at a time", "the directory persists", "with a backlog of at least 5")
def test_server_keeps_its_directory_for_the_next_client(lab):
    """server: after a client half-closes, it closes too, and the next client finds its directory"""
    home = make_home(lab)
    server, port = start_server(lab, home)
    listening = lab.listening(server, local_port=port)
    expect(listening and listening[0].send_q >= 5,
           expected="a listen backlog of at least 5 (`ss -ltn` shows it as the listener's Send-Q)",
           happened=f"the backlog is {listening[0].send_q}" if listening else "no listening socket",
           hint="clients that connect while another is served wait in the listen queue; with a "
                "backlog of 1 the third one's SYN is dropped. Pass 5 or more to listen()",
           sockets=lab.sockets_text)
    first = Shell(lab, port)
    expect_reply(first, "cd sub", "")
    first.peer.shutdown_write()
    how = first.peer.wait_close(timeout=1.5)
    expect(how == "eof",
           expected="after the client's FIN (read() returns 0) the server closes its side: EOF",
           happened=first.peer.state() if how else "the connection stayed open",
           hint="read() returning 0 ends the session: close the connection, go back to accept()")
    server.expect_line("client closed", timeout=1.5,
                       expected="the server prints `client closed` when a session ends")
    second = Shell(lab, port)
    expect_reply(second, "pwd", home + "/sub\n",
                 hint="the working directory belongs to the server process, not to a client: "
                      "don't chdir back when a client leaves")


@points(1)
@contract("server", "gives back every descriptor")
def test_server_gives_back_its_descriptors(lab):
    """server: sessions and `ls` requests leave no descriptor open behind them"""
    home = make_home(lab)
    server, port = start_server(lab, home)
    first = Shell(lab, port)
    expect_reply(first, "pwd", home + "\n")
    base = server.fd_count()                # listener + this connection + stdio
    for _ in range(20):
        expect_reply(first, "ls", listing(TOP))
    grown = server.fd_count()
    expect(grown is not None and grown <= base,
           expected="after 20 `ls` the server holds as many descriptors as before",
           happened=f"it holds {grown} instead of {base}",
           hint="closedir() every directory that opendir() opened, also when the listing fails")
    first.peer.shutdown_write()
    server.expect_line("client closed", timeout=1.5)
    for i in range(3):
        other = Shell(lab, port)
        expect_reply(other, "pwd", home + "\n")
        other.peer.shutdown_write()
        server.expect_line("client closed", timeout=1.5)
    left = poll_until(lambda: (n := server.fd_count()) is not None and n < base and n, timeout=1.0) \
        or server.fd_count()
    expect(left is not None and left < base,
           expected="with no client connected, the server holds fewer descriptors than while one was",
           happened=f"it holds {left} after 4 clients, {base} while the first was connected",
           hint="close(conn) when a session ends, whatever ended it")


@points(1)
@contract("server", "serves one client at a time")
def test_server_survives_a_client_that_resets(lab):
    """server: a client that resets the connection (RST) ends its session, not the server"""
    home = make_home(lab)
    server, port = start_server(lab, home)
    rude = Shell(lab, port)
    expect_reply(rude, "pwd", home + "\n")
    rude.peer.reset()                       # RST, no FIN: the server's read() fails with ECONNRESET
    try:
        server.expect_line("client closed", timeout=1.5)
    except GradeFailure:
        server.wait_exit(0.3)
        raise GradeFailure(
            expected="after the client's reset, read() fails with ECONNRESET: the server ends that "
                     "session, prints `client closed` and keeps serving",
            happened=f"the server {server.status()}",
            hint="a failed read() on the connection ends the session only: warning(), close it, back "
                 "to accept() -- never fatal() because of a client") from None
    second = Shell(lab, port)
    expect_reply(second, "pwd", home + "\n", hint="after a reset, the next client is served")


@points(2)
@contract("server", "serves one client at a time", "never dies of SIGPIPE")
def test_server_survives_a_peer_gone_before_its_reply(lab):
    """server: a client that left before its replies costs that session, not the server (SIGPIPE)"""
    home = make_home(lab)
    server, port = start_server(lab, home)
    busy = Shell(lab, port)
    expect_reply(busy, "pwd", home + "\n")
    # While the server is busy with `busy`, a second client queues 20 requests and leaves
    # at once: FIN, then RST.  When the server gets to it, its first reply fails with
    # EPIPE -- which raises SIGPIPE unless the server ignores it.
    gone = lab.connect(port)
    gone.send("pwd\n" * 20)
    gone.shutdown_write()
    gone.reset()
    busy.peer.shutdown_write()
    server.expect_line("client closed", timeout=1.5)
    try:
        server.expect_line("client closed", timeout=1.5)
    except GradeFailure:
        server.wait_exit(0.3)
        raise GradeFailure(
            expected="the server's reply to the vanished client fails (EPIPE), the server reports "
                     "it, prints `client closed` and keeps serving",
            happened=f"the server {server.status()}",
            hint="signal(SIGPIPE, SIG_IGN) at start-up (or MSG_NOSIGNAL on each send): then a "
                 "write to a dead connection returns -1/EPIPE instead of killing the server" if
                 server.returncode == -signal.SIGPIPE else
                 "a failed write ends that session (close, back to accept), not the server")
    third = Shell(lab, port)
    expect_reply(third, "pwd", home + "\n")


# == client =========================================================================

@points(2)
@contract("client", "each non-empty stdin line", "commands are sent as soon as", "each reply frame that arrives")
def test_client_sends_commands_and_prints_replies(lab):
    """client: sends each command line and prints each reply frame exactly as it is"""
    client, server = start_client(lab, stdin="pwd\n\nls\ncd x\nls\n")   # stdin stays open
    hint_lines = ("all of this arrived on stdin at once: with poll()/select(), don't read stdin "
                  "through fgets()/stdio -- lines stdio has read ahead never wake poll up again")
    expect_command(server, "pwd", hint=hint_lines)
    server.send(frame("/srv/home\n"))
    client.expect_line(r"/srv/home", timeout=1.5,
                       hint="read the 4-byte length, then that many bytes, and print them as they are")
    expect_command(server, "ls", hint="an empty line is not a command: send nothing for it. "
                                      + hint_lines)
    send_to_client(client, server, frame("a.txt\nb.txt\n"), pieces=3, delay=0.005,
                   expected="the client reads the reply to ls, which arrives in 3-byte pieces",
                   hint="one read() returns whatever has arrived: read exactly 4 bytes of length, "
                        "then loop until you have exactly that many bytes (read_frame does it)")
    expect_command(server, "cd x", hint=hint_lines)
    server.send(frame(""))
    expect_command(server, "ls", hint=hint_lines)
    server.send(frame("c.txt\n"))
    expect_lines(client, ["a.txt", "b.txt", "c.txt"],
                 expected="the client prints `a.txt`, `b.txt` (the reply to ls, which arrived in "
                          "3-byte pieces), nothing for cd's empty reply, then `c.txt`",
                 hint="one read() returns whatever has arrived: read exactly 4 bytes of length, "
                      "then exactly that many (read_frame does it)")


@points(1)
@contract("client", "each non-empty stdin line", "commands are sent as soon as")
def test_client_sends_lines_typed_later_and_long_ones(lab):
    """client: lines typed later are sent too, and a 4095-byte line is sent whole"""
    client, server = start_client(lab, stdin="pwd\n")
    expect_command(server, "pwd")
    server.send(frame("/srv/home\n"))
    client.expect_line(r"/srv/home", timeout=1.5)
    longest = "cd " + "x" * 4092                # 4095 bytes: the longest line the server takes
    client.write_stdin(longest + "\n")
    got = server.recv_line(what="the 4095-byte line typed after the first reply",
                           hint="keep reading stdin after the first read: only read() returning 0 "
                                "is its end. A line of 4095 bytes and its '\\n' must fit your buffer")
    expect(got == longest, expected="the 4095-byte line (`cd ` and 4092 x), whole",
           happened=f"a line of {len(got)} bytes", hint="4095 bytes, then '\\n': 4096 bytes of buffer")
    server.send(frame("error: cd: xxx: File name too long\n"))
    client.expect_line(r"error: cd: xxx: File name too long", timeout=1.5)
    client.write_stdin("ls\n")
    expect_command(server, "ls", hint="every line typed is a command, however late it comes")


@points(3)
@contract("client", "waits on stdin and the socket", "when the server closes")
def test_client_notices_replies_and_close_while_idle(lab):
    """client: while stdin is idle, prints what the server sends and notices its close at once"""
    client, server = start_client(lab)          # stdin open, nothing typed
    server.send(frame("hello from the server\n"))
    hint = ("the client must wait on stdin and the socket together -- poll() or select() -- "
            "not block in fgets()/read() on stdin")
    client.expect_line(r"hello from the server", timeout=1.5,
                       expected="a reply that arrives while nobody types is printed within 1.5 s",
                       hint=hint)
    server.close()
    client.expect_line(r"server closed", timeout=1.5,
                       expected="when the server closes, the idle client prints `server closed` "
                                "within 1.5 s",
                       hint=hint + "; read_frame() returning FRAME_EOF is the server's FIN")
    client.expect_exit(0, timeout=1.5, hint="after `server closed`, exit 0")


@points(2)
@contract("client", "`quit`, or the end of stdin")
def test_client_quit_half_closes(lab):
    """client: `quit` half-closes (FIN, no bytes), the client still prints the late reply, exits 0"""
    client, server = start_client(lab, stdin="pwd\nquit\n")   # stdin stays open
    expect_command(server, "pwd")
    how = server.wait_close(timeout=1.5)
    expect(how == "eof" and not server.buffer,
           expected="after `quit` the server sees EOF (a FIN) within 1.5 s, and no bytes: quit is "
                    "not sent",
           happened={"reset": "a reset (RST)", None: (
               f"the client sent {server.buffer!r}" if server.buffer else
               "no FIN within 1.5 s: the connection stays open" + WAITS_FOR_REPLY)}.get(
               how, f"EOF after the bytes {server.buffer!r}"),
           hint="quit means shutdown(sock, SHUT_WR): the server learns the session is over and "
                "can still answer. close() would throw the late reply away")
    server.send(frame("/late/reply\n"))           # the answer to pwd, sent after the FIN
    client.expect_line(r"/late/reply", timeout=1.5,
                       expected="the reply sent after the client's FIN is still printed",
                       hint="after the half-close keep polling the socket: only EOF ends the client")
    server.close()
    client.expect_line(r"server closed", timeout=1.5)
    client.expect_exit(0, timeout=1.5)


def expect_half_closed_client_finishes(client, server):
    """After its half-close the client still prints a reply, then `server closed`, and exits 0."""
    server.send(frame("x\n"))
    client.expect_line("x", timeout=1.5)
    server.close()
    client.expect_line(r"server closed", timeout=1.5)
    client.expect_exit(0, timeout=1.5)


@points(1)
@contract("client", "`quit`, or the end of stdin")
def test_client_sleeps_after_end_of_stdin(lab):
    """client: after stdin ends, it waits for the server without spinning the CPU"""
    client, server = start_client(lab, stdin="ls\n")
    expect_command(server, "ls")
    client.close_stdin()
    how = server.wait_close(timeout=1.5)
    expect(how == "eof", expected="after stdin ends the server sees EOF (a FIN) within 1.5 s",
           happened=server.state() if how else "no FIN within 1.5 s" + WAITS_FOR_REPLY)
    expect_asleep(client, "while it waits for the server's close", sleeps_in="poll",
                  hint="at EOF stdin stays readable: poll() returns at once, forever. After quit or "
                       "EOF, stop polling stdin (fd -1, or leave it out of the set)")
    expect_half_closed_client_finishes(client, server)


@points(1)
@contract("client", "`quit`, or the end of stdin", "a last line without")
def test_client_end_of_stdin_means_quit(lab):
    """client: the end of stdin (Ctrl-D) works like quit"""
    client, server = start_client(lab, stdin="ls\npwd")        # the last line has no '\n'
    expect_command(server, "ls")
    client.close_stdin()
    expect_command(server, "pwd", hint="at the end of stdin, a last line without '\\n' is a command "
                                       "too: send it (with '\\n') before the half-close")
    how = server.wait_close(timeout=1.5)
    expect(how == "eof", expected="after stdin ends the server sees EOF (a FIN) within 1.5 s",
           happened=server.state() if how else "no FIN within 1.5 s: the connection stays open" + WAITS_FOR_REPLY,
           hint="read() on stdin returning 0 is the same as `quit`: shutdown(SHUT_WR), and stop "
                "polling stdin (it stays readable at EOF: poll would spin)")
    expect_half_closed_client_finishes(client, server)


@points(1)
@contract("client", "each reply frame that arrives")
def test_client_prints_nul_bytes_of_a_reply(lab):
    """client: a reply with a NUL byte in it is printed whole, byte for byte"""
    client, server = start_client(lab, stdin="ls\n")
    expect_command(server, "ls")
    server.send(frame(b"one\0two\n"))
    server.send(frame("/end/of/test\n"))
    out = poll_until(lambda: "/end/of/test\n" in client.stdout_bytes() and client.stdout_bytes(),
                     timeout=1.5) or client.stdout_bytes()
    expect(out == "one\0two\n/end/of/test\n",
           expected="the reply `one\\0two\\n` (8 bytes, a NUL among them) is printed as it is, then `/end/of/test`",
           happened=f"stdout was {out[:40]!r}",
           hint="a reply is bytes, not a C string: print it with fwrite(buf, 1, n, stdout) or "
                "write(), never fputs/printf(\"%s\"), which stop at the NUL")


@points(1)
@contract("client", "each reply frame that arrives")
def test_client_prints_a_reply_without_newline_at_once(lab):
    """client: a reply that does not end in a newline is printed at once too"""
    client, server = start_client(lab, stdin="pwd\n")      # stdin stays open, nothing more typed
    expect_command(server, "pwd")
    server.send(frame("no newline at the end"))
    expect(client.wait_stdout_tail("no newline at the end", timeout=1.5), expected="the reply `no newline at the end` (no '\\n') is on stdout within 1.5 s",
           happened=f"stdout held {client.stdout_unterminated()[-60:]!r} after its last line",
           hint="stdout is line-buffered: bytes after the last '\\n' wait in stdio's buffer. "
                "fflush(stdout) after each reply (or write() to fd 1)")


@points(1)
@contract("client", "each non-empty stdin line")
def test_client_sends_nul_bytes_of_a_command(lab):
    """client: a command line with a NUL byte in it is sent whole, byte for byte"""
    client, server = start_client(lab, stdin=b"cd a\0b\n")
    got = server.recv_exactly(7, timeout=1.5, what="the 7 bytes `cd a\\0b\\n`",
                              hint="send the line's bytes, all of them: strcpy()/strlen() stop at a NUL")
    expect(got == b"cd a\0b\n", expected="the bytes b'cd a\\x00b\\n', NUL byte included",
           happened=f"got {got!r}",
           hint="a line is bytes up to '\\n', not a C string: copy it with memcpy(), not strncpy(), "
                "which stops at the NUL and fills the rest with zeros")


@points(2)
@contract("client", "each reply frame that arrives")
def test_client_prints_a_long_reply_whole(lab):
    """client: a reply longer than any single read is printed whole, header split or not"""
    names = [f"entry-{i:05d}-of-a-long-listing" for i in range(6000)]
    client, server = start_client(lab, stdin="ls\npwd\n")
    expect_command(server, "ls")
    data = frame(listing(names))
    expected = f"the client prints the {len(names)} lines of the long reply, then `/end/of/test`"
    header_hint = ("the 4-byte length itself may arrive in pieces: read exactly 4 bytes, then "
                   "exactly that many bytes (read_frame)")
    body_hint = ("a reply of 170 kB takes many read()s: read the length, then loop until you "
                 "have exactly that many bytes (read_frame); print nothing else")

    send_to_client(client, server, data[:6], expected, header_hint, pieces=2, delay=0.01)   # the length itself arrives in pieces
    send_to_client(client, server, data[6:], expected, body_hint)
    expect_command(server, "pwd")
    send_to_client(client, server, frame("/end/of/test\n"), expected, body_hint)
    expect_lines(client, sorted(names) + ["/end/of/test"], timeout=3.0, expected=expected, hint=body_hint)


# == both ===========================================================================

@points(3)
@contract("server", "the absolute path of the current directory")
@contract("client", "each non-empty stdin line", "each reply frame that arrives", "when the server closes")
def test_both_session_transcript(lab):
    """client + server: a whole session prints the expected transcript"""
    home = make_home(lab)
    server, port = start_server(lab, home)
    client = lab.start(CLIENT, "127.0.0.1", port,
                       stdin="pwd\nls\ncd sub\npwd\ncd /no/such/dir\npwd\nls\nquit\n")
    want = [home, *sorted(TOP), home + "/sub"]
    got = lines_until(client, "server closed", expected="the client ends with `server closed`")
    expect(got[:len(want)] == want and len(got) == len(want) + 4
           and got[-4].startswith("error: ") and got[-3:] == [home + "/sub", *SUB, "server closed"],
           expected="\n".join(["the transcript", *want, "error: cd: /no/such/dir: No such file or directory",
                               home + "/sub", *SUB, "server closed"]),
           happened="\n".join(["the client printed", *got]))
    client.expect_exit(0)
    server.expect_line("client closed", timeout=1.5)
    server.expect_running("the server keeps running after the client quits",
                          hint="the session ends, not the server: go back to accept()")


@points(2)
@contract("server", "serves one client at a time", "the directory persists")
@contract("client", "connects to HOST:PORT")
def test_both_server_survives_a_killed_client(lab):
    """client + server: a client killed mid-session does not stop the server"""
    home = make_home(lab)
    server, port = start_server(lab, home)
    client = lab.start(CLIENT, "127.0.0.1", port, stdin="cd sub\npwd\n")
    client.expect_line(re.escape(home + "/sub"), timeout=2.0)
    client.signal(signal.SIGKILL)
    client.wait_exit(1.0)
    server.expect_line("client closed", timeout=1.5,
                       expected="when the client is killed its kernel closes the connection: the "
                                "server reads 0, prints `client closed` and waits for the next",
                       hint="read() returning 0 (or failing) ends the session, not the server")
    second = lab.start(CLIENT, "127.0.0.1", port, stdin="pwd\nquit\n")
    second.expect_line(re.escape(home + "/sub"), timeout=2.0,
                       expected="a new client is served, in the directory the killed one left",
                       hint="back to accept() after a session ends; never exit because a client did")
    second.expect_line("server closed", timeout=1.5)
    second.expect_exit(0)
