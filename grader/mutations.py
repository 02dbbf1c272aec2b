"""Mutation operators for socket code, on the C of a reference solution parsed by libclang
(Debian's python3-clang).

Each operator finds a construct in the syntax tree and makes one small, realistic
mistake of it -- the kind a student makes -- as text edits of the source:

  drop-call        a call a correct program needs: htons/htonl/ntohs/ntohl (the value is
                   used as it is), shutdown, close, setsockopt, signal, sigaction, unlink,
                   free, fflush, waitpid, pthread_detach, make_nonblocking, epoll_ctl(DEL),
                   io_uring_cqe_seen, io_uring_cq_advance...
                   (a statement becomes `(void)0`, a checked result `0`: "it succeeded")
  listen-backlog   the backlog given to listen()/tcp_listen_or_die() becomes 1
  collapse-loop    a loop that reads or writes (read, write, send, recv, readn, writen,
                   read_line, getline...) runs its body at most once
  drop-EINTR, drop-EAGAIN, drop-EPIPE
                   an errno case is no longer special: `errno == EINTR` -> 0,
                   `errno != EINTR` -> 1 (EAGAIN and EWOULDBLOCK go together)
  cmp-strict       < <-> <=, > <-> >=
  cmp-negate       == <-> !=
  bound-shift      a constant bound moves by one the other way than cmp-strict does
  swap-shut-RD, swap-shut-WR, swap-shut-RDWR
                   shutdown's `how` becomes another one
  drop-flag        a flag leaves an OR-ed flag expression (or becomes 0 where alone):
                   SOCK_NONBLOCK, SOCK_CLOEXEC, O_NONBLOCK, EPOLLET, EPOLLIN/OUT,
                   MSG_NOSIGNAL, MSG_WAITALL, SA_RESTART, io_uring's IOSQE_IO_LINK and
                   IORING_ASYNC_CANCEL_ALL/ANY... (SO_REUSEADDR: drop-call of its setsockopt)
  shrink-array     a byte buffer's declared size is halved
  shrink-sizeof    `sizeof(buf)` passed as a size argument becomes `sizeof(buf) - 1`
  nul-stop         a byte operation stops at a NUL: memcpy -> strncpy, memcmp -> strncmp,
                   memchr -> strchr, a write's byte count from strlen(buf), `%.*s` -> `%s`

Not mutated: what a macro expands to (only what is spelled in the file), and
comparisons of a file descriptor with 0 (`fd < 0` -> `fd <= 0`): fd 0 is standard
input, always open, so those mutants are equivalent by construction.

A mutant's id is "<lesson>/<file>:<line>:<column>:<operator>:<hash>", the hash being
the first 6 hex digits of the SHA-1 of the original text the mutant replaces.
"""
import difflib
import errno
import hashlib
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

from grader import overlay

REPO = overlay.REPO

BYTE_ORDER = {"htons", "htonl", "ntohs", "ntohl"}
DROP_CALLS = BYTE_ORDER | {
    "shutdown", "close", "setsockopt", "signal", "sigaction", "unlink", "remove", "free",
    "fflush", "waitpid", "wait", "pthread_detach", "make_nonblocking", "closedir",
    "freeaddrinfo", "epoll_ctl", "io_uring_cqe_seen", "io_uring_cq_advance"}
BACKLOG_ARG = {"listen": 1, "tcp_listen_or_die": 2}          # call -> index of the backlog
IO_CALLS = {"read", "write", "readv", "writev", "send", "recv", "sendto", "recvfrom", "sendmsg",
            "recvmsg", "readn", "writen", "read_line", "read_frame", "write_frame", "getline",
            "fread", "fwrite", "fgets"}
ERRNO_CLASSES = {"EINTR": ("EINTR",), "EAGAIN": ("EAGAIN", "EWOULDBLOCK"), "EPIPE": ("EPIPE",)}
SHUT = ("SHUT_RD", "SHUT_WR", "SHUT_RDWR")
FLAGS = {"SOCK_NONBLOCK", "SOCK_CLOEXEC", "O_NONBLOCK", "O_CLOEXEC", "EFD_NONBLOCK", "EFD_CLOEXEC",
         "EPOLLET", "EPOLLIN", "EPOLLOUT", "EPOLLRDHUP", "EPOLLONESHOT", "POLLIN", "POLLOUT",
         "MSG_NOSIGNAL", "MSG_WAITALL", "MSG_DONTWAIT", "SA_RESTART", "SA_NOCLDSTOP",
         "IOSQE_IO_LINK", "IORING_ASYNC_CANCEL_ALL", "IORING_ASYNC_CANCEL_ANY"}
# calls that return a file descriptor (or -1): `fd < 0` of their result is not mutated
FD_CALL = re.compile(r"^(socket|socketpair|accept4?|open(at)?|epoll_create1?|eventfd|timerfd_create|"
                     r"signalfd|dup[23]?|\w+_(listen|connect|accept|bind|socket)\w*|"
                     r"(tcp|udp|unix)_\w+)$")
# [(call, index of the byte-count argument, index of the buffer)] for the strlen mutant
COUNTED_WRITES = {"write": (1, 2), "writen": (1, 2), "send": (1, 2), "sendto": (1, 2),
                  "write_frame": (1, 2), "fwrite": (0, 2)}
NUL_CALLS = {"memcpy": "strncpy", "memcmp": "strncmp", "memchr": "strchr"}
FORMAT_ARG = {"printf": 0, "fprintf": 1, "dprintf": 1, "sprintf": 1, "snprintf": 2,
              "fatal": 1, "warning": 1}
CONVERSION = re.compile(r"%(%|[-+ #0']*(\*|\d+)?(?:\.(\*|\d*))?(?:hh|h|ll|l|j|z|t|L)?[diouxXeEfFgGaAcspnm])")
CHARLIKE = {"char", "signed char", "unsigned char", "uint8_t", "int8_t"}
COMPARISONS = {"<", "<=", ">", ">=", "==", "!="}
STRICT_FLIP = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
ERRNO_NAMES = set(errno.errorcode.values()) | {"EWOULDBLOCK", "EDEADLOCK", "ENOTSUP"}


class ParseError(Exception):
    pass


@dataclass
class Mutant:
    lesson: str
    file: str                       # repository path, e.g. solutions/01-sockets/server.c
    line: int
    col: int
    op: str
    original: str                   # the original text of the span the edits cover
    description: str
    edits: list = field(default_factory=list)    # [(start, end, replacement)] byte offsets

    @property
    def rel(self):
        """The file's path inside its solution directory: server.c, lib/loop.c."""
        return self.file.split("/", 2)[2] if self.file.startswith("solutions/") else self.file

    @property
    def hash(self):
        return hashlib.sha1(self.original.encode()).hexdigest()[:6]

    @property
    def id(self):
        return f"{self.lesson}/{self.rel}:{self.line}:{self.col}:{self.op}:{self.hash}"

    def apply(self, data):
        for start, end, text in sorted(self.edits, reverse=True):
            data = data[:start] + text.encode() + data[end:]
        return data

    def diff(self, data):
        old = data.decode(errors="replace").splitlines(keepends=True)
        new = self.apply(data).decode(errors="replace").splitlines(keepends=True)
        return "".join(difflib.unified_diff(old, new, f"a/{self.file}", f"b/{self.file}", n=2))


def clang():
    """The libclang bindings, or None when python3-clang is not installed."""
    try:
        import clang.cindex as ci
        ci.Index.create()
        return ci
    except Exception:   # ImportError, or the shared library is missing (LibclangError)
        return None


# -- a parsed source file -------------------------------------------------------------

class Node:
    __slots__ = ("cursor", "kind", "start", "end", "parent", "index", "kids")

    def __init__(self, cursor, kind, start, end, parent, index):
        self.cursor, self.kind, self.start, self.end = cursor, kind, start, end
        self.parent, self.index = parent, index      # index among the parent's children
        self.kids = []


class Source:
    """One C file: its bytes, tokens and the syntax nodes spelled in it."""

    def __init__(self, path, args, ci=None):
        self.ci = ci = ci or clang()
        self.path = Path(path)
        self.data = self.path.read_bytes()
        tu = ci.Index.create().parse(str(self.path), args=args)
        errors = [d for d in tu.diagnostics if d.severity >= ci.Diagnostic.Error]
        if errors:
            raise ParseError(f"{path}: " + "; ".join(str(d) for d in errors[:3]))
        self.tu = tu
        name = str(self.path)
        f = tu.get_file(name)
        whole = ci.SourceRange.from_locations(ci.SourceLocation.from_offset(tu, f, 0),
                                              ci.SourceLocation.from_offset(tu, f, len(self.data)))
        self.tokens = [(t.extent.start.offset, t.extent.end.offset, t.spelling, t.kind.name)
                       for t in tu.get_tokens(extent=whole)]
        self.token_starts = [t[0] for t in self.tokens]
        self.nodes = []
        self.outermost = {}             # (start, end) -> the outermost node of that extent
        K = ci.CursorKind

        def walk(cursor, parent):
            for i, ch in enumerate(cursor.get_children()):
                loc = ch.location
                if loc.file is None or loc.file.name != name:
                    continue
                node = Node(ch, ch.kind, ch.extent.start.offset, ch.extent.end.offset, parent, i)
                if ch.kind != K.MACRO_INSTANTIATION and ch.kind != K.MACRO_DEFINITION \
                        and ch.kind != K.INCLUSION_DIRECTIVE:
                    self.nodes.append(node)
                    self.outermost.setdefault((node.start, node.end), node)
                    if parent is not None:
                        parent.kids.append(node)
                walk(ch, node)

        walk(tu.cursor, None)

    # text and tokens
    def text(self, start, end):
        return self.data[start:end].decode(errors="replace")

    def line_col(self, offset):
        line = self.data.count(b"\n", 0, offset) + 1
        col = offset - (self.data.rfind(b"\n", 0, offset) + 1) + 1
        return line, col

    def tokens_in(self, start, end):
        i = bisect_left(self.token_starts, start)
        out = []
        while i < len(self.tokens) and self.tokens[i][1] <= end:
            out.append(self.tokens[i])
            i += 1
        return out

    def token_at(self, start):
        i = bisect_left(self.token_starts, start)
        return self.tokens[i] if i < len(self.tokens) and self.tokens[i][0] == start else None

    def matching(self, i):
        """Index of the token closing the bracket at token index i."""
        pairs = {"(": ")", "[": "]", "{": "}"}
        open_, close = self.tokens[i][2], pairs[self.tokens[i][2]]
        depth = 0
        for j in range(i, len(self.tokens)):
            s = self.tokens[j][2]
            if s == open_:
                depth += 1
            elif s == close:
                depth -= 1
                if depth == 0:
                    return j
        return None

    def token_index(self, start):
        i = bisect_left(self.token_starts, start)
        return i if i < len(self.tokens) and self.tokens[i][0] == start else None

    # syntax helpers
    def children(self, node):
        return node.kids

    def strip(self, node):
        """Below implicit conversions (UNEXPOSED_EXPR) to the expression itself."""
        K = self.ci.CursorKind
        while node is not None and node.kind == K.UNEXPOSED_EXPR:
            kids = self.children(node)
            if len(kids) != 1 or (kids[0].start, kids[0].end) != (node.start, node.end):
                break
            node = kids[0]
        return node

    def up(self, node):
        """The parent, above implicit conversions and parentheses."""
        K = self.ci.CursorKind
        p = node.parent
        while p is not None and p.kind in (K.UNEXPOSED_EXPR, K.PAREN_EXPR):
            p = p.parent
        return p

    def binary_op(self, node):
        """The operator of a binary operator node spelled in the file, or None (macro)."""
        kids = self.children(node)
        if len(kids) != 2:
            return None
        lhs, rhs = kids
        between = [t for t in self.tokens_in(lhs.end, rhs.start) if t[0] >= lhs.end]
        if len(between) != 1 or between[0][3] != "PUNCTUATION":
            return None
        return between[0]

    def callee(self, node):
        """The name of a direct call spelled in the file (not one a macro expands to)."""
        name = node.cursor.spelling
        tok = self.token_at(node.start)
        return name if name and tok and tok[2] == name else None

    def call_args(self, node):
        return [self._arg_node(a) for a in node.cursor.get_arguments()]

    def _arg_node(self, cursor):
        start, end = cursor.extent.start.offset, cursor.extent.end.offset
        return self.outermost.get((start, end))

    def is_macro_token(self, node, names):
        """The node is exactly one identifier token from `names` (a macro use)."""
        toks = self.tokens_in(node.start, node.end)
        return len(toks) == 1 and toks[0][2] in names and toks[0][0] == node.start \
            and toks[0][1] == node.end

    def charlike(self, type_):
        """A byte type: char, unsigned char, uint8_t (through typedefs and qualifiers)."""
        t = type_.get_canonical().spelling.replace("const ", "").replace("volatile ", "").strip()
        return t in CHARLIKE or type_.spelling.replace("const ", "").strip() in CHARLIKE

    def bytes_pointer(self, node, plain=False):
        """The expression is a pointer to bytes or a byte array (before decay); plain:
        to char itself, which the str* functions take without a cast."""
        T = self.ci.TypeKind
        n = self.strip(node)
        t = n.cursor.type.get_canonical()
        if t.kind == T.POINTER:
            t = t.get_pointee()
        elif t.kind in (T.CONSTANTARRAY, T.INCOMPLETEARRAY):
            t = t.element_type
        else:
            return False
        if plain:
            return t.spelling.replace("const ", "").replace("volatile ", "").strip() == "char"
        return self.charlike(t)

    def enclosing_function(self, node):
        K = self.ci.CursorKind
        while node is not None and node.kind != K.FUNCTION_DECL:
            node = node.parent
        return node

    def within(self, node, outer):
        return outer.start <= node.start and node.end <= outer.end


# -- the operators ----------------------------------------------------------------

class Generator:
    def __init__(self, src, lesson, rel_file):
        self.src, self.lesson, self.file = src, lesson, rel_file
        self.K = src.ci.CursorKind
        self.out = []

    def add(self, op, edits, description):
        s = self.src
        start = min(e[0] for e in edits)
        end = max(e[1] for e in edits)
        line, col = s.line_col(start)
        self.out.append(Mutant(self.lesson, self.file, line, col, op, s.text(start, end),
                               description, list(edits)))

    def short(self, start, end, limit=60):
        t = " ".join(self.src.text(start, end).split())
        return t if len(t) <= limit else t[:limit - 1] + "…"

    def run(self):
        s = self.src
        for node in s.nodes:
            k = node.kind
            if k == self.K.CALL_EXPR:
                name = s.callee(node)
                if name:
                    self.calls(node, name)
            elif k == self.K.BINARY_OPERATOR:
                op = s.binary_op(node)
                if op and op[2] in COMPARISONS:
                    self.comparison(node, op)
            elif k in (self.K.WHILE_STMT, self.K.FOR_STMT, self.K.DO_STMT):
                self.loop(node)
            elif k in (self.K.VAR_DECL, self.K.FIELD_DECL):
                self.array(node)
            elif k == self.K.CXX_UNARY_EXPR:
                self.size_argument(node)
        self.errno_cases()
        self.macros()
        return self.out

    # drop-call, listen-backlog, nul-stop
    def calls(self, node, name):
        s = self.src
        args = s.call_args(node)
        if name in DROP_CALLS and None not in args:
            self.drop_call(node, name, args)
        if name in BACKLOG_ARG and len(args) > BACKLOG_ARG[name] and args[BACKLOG_ARG[name]]:
            a = args[BACKLOG_ARG[name]]
            if s.text(a.start, a.end).strip() not in ("0", "1"):
                self.add("listen-backlog", [(a.start, a.end, "1")],
                         f"{name}() with a backlog of 1 instead of {self.short(a.start, a.end)}")
        if name in NUL_CALLS and len(args) == 3 and None not in args and s.bytes_pointer(args[0], True) \
                and (name == "memchr" or s.bytes_pointer(args[1], True)):
            tok = s.token_at(node.start)
            edits = [(tok[0], tok[1], NUL_CALLS[name])]
            if name == "memchr":            # strchr has no length
                edits.append((args[1].end, args[2].end, ""))
            self.add("nul-stop", edits, f"{name} -> {NUL_CALLS[name]}: stops at the first NUL byte "
                                        f"({self.short(node.start, node.end)})")
        if name in COUNTED_WRITES and None not in args:
            buf_i, count_i = COUNTED_WRITES[name]
            if len(args) > count_i and s.bytes_pointer(args[buf_i], True):
                count = args[count_i]
                count_text = s.text(count.start, count.end)
                if "strlen" not in count_text:
                    buf = s.text(args[buf_i].start, args[buf_i].end)
                    self.add("nul-stop", [(count.start, count.end, f"strlen({buf})")],
                             f"{name}() counts the bytes with strlen({buf}) instead of "
                             f"{self.short(count.start, count.end, 30)}: stops at a NUL")
        if name in FORMAT_ARG and len(args) > FORMAT_ARG[name] and None not in args:
            self.precision(node, name, args)

    def drop_call(self, node, name, args):
        s = self.src
        call = self.short(node.start, node.end)
        if name in BYTE_ORDER:
            if len(args) != 1:
                return
            arg = s.text(args[0].start, args[0].end)
            simple = re.fullmatch(r"[\w.\[\]>-]+", arg.replace("->", ">")) is not None
            self.add("drop-call", [(node.start, node.end, arg if simple else f"({arg})")],
                     f"no {name}(): {call} -> {arg}")
            return
        if name == "epoll_ctl" and (len(args) < 2 or "EPOLL_CTL_DEL" not in s.text(args[1].start, args[1].end)):
            return
        what = name
        if name == "setsockopt" and len(args) >= 3:
            what = f"setsockopt({s.text(args[2].start, args[2].end)})"
        elif name in ("signal", "sigaction") and args:
            what = f"{name}({s.text(args[0].start, args[0].end)})"
        statement = self.is_statement(node) or node.cursor.type.spelling == "void"
        self.add("drop-call", [(node.start, node.end, "(void)0" if statement else "0")],
                 f"no {what}: {call} -> {'(void)0' if statement else '0 (as if it succeeded)'}")

    def is_statement(self, node):
        K = self.K
        p = node.parent
        if p is None:
            return False
        if p.kind in (K.COMPOUND_STMT, K.LABEL_STMT, K.CASE_STMT, K.DEFAULT_STMT):
            return True
        if p.kind == K.IF_STMT and node.index > 0:
            return True
        if p.kind in (K.WHILE_STMT, K.FOR_STMT) and node is self.src.children(p)[-1]:
            return True
        if p.kind == K.DO_STMT and node.index == 0:
            return True
        return False

    def precision(self, node, name, args):
        s = self.src
        fmt = s.strip(args[FORMAT_ARG[name]])
        toks = s.tokens_in(fmt.start, fmt.end)
        if not toks or any(t[3] != "LITERAL" or not t[2].startswith('"') for t in toks):
            return
        consumed = FORMAT_ARG[name] + 1         # index of the next argument
        for t in toks:
            body = t[2][1:-1]
            for m in CONVERSION.finditer(body):
                if m.group(1) == "%":
                    continue
                width, precision = m.group(2), m.group(3)
                if width == "*":
                    consumed += 1
                prec_arg = None
                if precision == "*":
                    prec_arg = consumed
                    consumed += 1
                conv = m.group(0)
                if prec_arg is not None and conv.endswith("s") and prec_arg + 1 < len(args):
                    at = t[0] + 1 + m.start()
                    new_conv = conv.replace(".*", "")
                    prev, arg = args[prec_arg - 1], args[prec_arg]
                    self.add("nul-stop", [(at, at + len(conv), new_conv), (prev.end, arg.end, "")],
                             f"{name}() with {new_conv} instead of {conv}: prints up to a NUL "
                             f"(or past the end of the bytes)")
                consumed += 1

    # collapse-loop
    def loop(self, node):
        s = self.src
        if not self.does_io(node):
            return
        i = s.token_index(node.start)
        if i is None:
            return
        kw = s.tokens[i][2]
        if kw == "do":
            # do BODY while (COND);  ->  do BODY while (0);
            w = max(j for j in range(i, len(s.tokens)) if s.tokens[j][1] <= node.end
                    and s.tokens[j][2] == "while")
            close = s.matching(w + 1)
            if close is None:
                return
            cond = (s.tokens[w + 1][1], s.tokens[close][0])
            self.add("collapse-loop", [(cond[0], cond[1], "0")],
                     f"the do-while loop that does I/O runs once ({self.short(*cond, 40)} -> 0)")
            return
        if kw not in ("while", "for") or i + 1 >= len(s.tokens) or s.tokens[i + 1][2] != "(":
            return
        close = s.matching(i + 1)
        if close is None:
            return
        header_end = s.tokens[close][1]
        inside = (s.tokens[i + 1][1], s.tokens[close][0])
        if kw == "while":
            cond = s.text(*inside)
            head, tail = f"do if ({cond})", " while (0);"
            what = f"while ({self.short(*inside, 40)})"
        else:
            depth, semis = 0, []
            for j in range(i + 1, close + 1):
                t = s.tokens[j][2]
                if t in "([{":
                    depth += 1
                elif t in ")]}":
                    depth -= 1
                elif t == ";" and depth == 1:
                    semis.append(s.tokens[j])
            if len(semis) != 2:
                return
            init = s.text(inside[0], semis[0][0]).strip()
            cond = s.text(semis[0][1], semis[1][0]).strip()
            head = f"do if ({cond})" if cond else "do"
            tail = " while (0);"
            if init:
                head, tail = "{ " + init + "; " + head, tail + " }"
            what = f"for ({self.short(*inside, 40)})"
        self.add("collapse-loop", [(node.start, header_end, head), (node.end, node.end, tail)],
                 f"the loop {what} runs its body at most once")

    def does_io(self, loop):
        """An I/O call in the loop, not inside a nested loop."""
        s, K = self.src, self.K
        loops = (K.WHILE_STMT, K.FOR_STMT, K.DO_STMT)
        for n in s.nodes:
            if n.kind != K.CALL_EXPR or not s.within(n, loop) or s.callee(n) not in IO_CALLS:
                continue
            p, nested = n.parent, False
            while p is not None and p is not loop:
                if p.kind in loops:
                    nested = True
                    break
                p = p.parent
            if p is loop and not nested:
                return True
        return False

    # drop-EINTR / drop-EAGAIN / drop-EPIPE
    def errno_cases(self):
        s, K = self.src, self.K
        done = set()
        for node in s.nodes:
            if node.kind != K.BINARY_OPERATOR:
                continue
            op = s.binary_op(node)
            if not op or op[2] not in ("==", "!="):
                continue
            cls = self.errno_class(node)
            if not cls or (node.start, node.end) in done:
                continue
            # the whole || / && chain the comparison is part of: its cases of the class go together
            top = node
            while True:
                p = s.up(top)
                if p is None or p.kind != K.BINARY_OPERATOR:
                    break
                pop = s.binary_op(p)
                if not pop or pop[2] not in ("||", "&&"):
                    break
                top = p
            cases = [n for n in s.nodes if n.kind == K.BINARY_OPERATOR and s.within(n, top)
                     and (s.binary_op(n) or (0, 0, ""))[2] in ("==", "!=") and self.errno_class(n) == cls]
            for n in cases:
                done.add((n.start, n.end))
            edits = [(n.start, n.end, "0" if s.binary_op(n)[2] == "==" else "1") for n in cases]
            shown = " and ".join(f"`{s.text(n.start, n.end)}` -> {e[2]}" for n, e in zip(cases, edits))
            self.add(f"drop-{cls}", edits, f"{cls} handled like any other error: {shown}")

    def errno_class(self, node):
        kids = self.src.children(node)
        for cls, names in ERRNO_CLASSES.items():
            if any(self.src.is_macro_token(k, names) for k in kids):
                return cls
        return None

    # cmp-strict, cmp-negate, bound-shift
    def comparison(self, node, op):
        s = self.src
        lhs, rhs = s.children(node)
        sym = op[2]
        if any(t[2] in ERRNO_NAMES for k in (lhs, rhs) for t in s.tokens_in(k.start, k.end)):
            return          # errno values: the drop-E* operators
        text = self.short(node.start, node.end)
        if sym in ("==", "!="):
            new = "!=" if sym == "==" else "=="
            self.add("cmp-negate", [(op[0], op[1], new)],
                     f"`{text}`: {sym} -> {new}")
            return
        if not self.fd_sign_check(lhs, rhs, sym):
            new = STRICT_FLIP[sym]
            self.add("cmp-strict", [(op[0], op[1], new)], f"`{text}`: {sym} -> {new}")
        # the other direction than cmp-strict: x < N -> x < N - 1, x > N -> x > N + 1,
        # x <= N -> x <= N + 1, x >= N -> x >= N - 1 (mirrored when N is on the left)
        for side, other, mirrored in ((rhs, lhs, False), (lhs, rhs, True)):
            if not self.constant(side) or self.constant(other):
                continue
            ctext = s.text(side.start, side.end)
            if ctext.strip() in ("0", "-1", "1", "NULL"):
                continue
            effective = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}[sym] if mirrored else sym
            delta = -1 if effective in ("<", ">=") else 1
            if re.fullmatch(r"\d+", ctext.strip()):
                new_c = str(int(ctext) + delta)
            else:
                new_c = f"{ctext} {'-' if delta < 0 else '+'} 1"
            self.add("bound-shift", [(side.start, side.end, new_c)],
                     f"`{text}`: bound {ctext} -> {new_c}")
            break

    def constant(self, node):
        """An integer constant expression spelled with literals, macros and sizeof."""
        toks = self.src.tokens_in(node.start, node.end)
        if not toks:
            return False
        i = 0
        while i < len(toks):
            t = toks[i]
            if t[2] == "sizeof":            # sizeof(anything) or sizeof one_name
                if i + 1 < len(toks) and toks[i + 1][2] == "(":
                    depth, i = 0, i + 1
                    while i < len(toks):
                        depth += {"(": 1, ")": -1}.get(toks[i][2], 0)
                        if depth == 0:
                            break
                        i += 1
                else:
                    i += 1
            elif t[3] == "LITERAL":
                if t[2].startswith(('"', "'")):
                    return False
            elif t[3] == "IDENTIFIER":
                if not re.fullmatch(r"[A-Z][A-Z0-9_]*", t[2]):
                    return False
            elif t[3] == "PUNCTUATION":
                if t[2] not in ("(", ")", "+", "-", "*", "/", "<<", ">>", "~"):
                    return False
            else:
                return False
            i += 1
        return True

    def fd_sign_check(self, lhs, rhs, sym):
        """`fd < 0` or `fd >= 0` with fd from socket()/accept()/open()...: fd 0 is stdin,
        so making it <= 0 / > 0 changes nothing."""
        s, K = self.src, self.K
        if s.text(rhs.start, rhs.end).strip() != "0" or sym not in ("<", ">="):
            return False
        e = s.strip(lhs)
        while e is not None and e.kind == K.PAREN_EXPR:
            kids = s.children(e)
            e = s.strip(kids[0]) if kids else None
        if e is None:
            return False
        if e.kind == K.CALL_EXPR:
            return bool(FD_CALL.match(e.cursor.spelling or ""))
        if e.kind == K.BINARY_OPERATOR and (s.binary_op(e) or (0, 0, ""))[2] == "=":
            kids = s.children(e)
            r = s.strip(kids[1]) if len(kids) == 2 else None
            return r is not None and r.kind == K.CALL_EXPR and bool(FD_CALL.match(r.cursor.spelling or ""))
        if e.kind in (K.DECL_REF_EXPR, K.MEMBER_REF_EXPR):
            return self.holds_fd(e)
        return False

    def holds_fd(self, ref):
        """The variable (or member) is only ever set from calls returning a descriptor."""
        s, K = self.src, self.K
        target = ref.cursor.referenced
        if target is None:
            return False
        sources = []
        if target.kind == K.VAR_DECL:
            for n in s.nodes:
                if n.cursor == target or (n.kind == K.VAR_DECL and n.cursor.hash == target.hash):
                    sources += [c for c in s.children(n) if c.kind not in (K.TYPE_REF,)]
                    break
        for n in s.nodes:
            if n.kind == K.BINARY_OPERATOR and (s.binary_op(n) or (0, 0, ""))[2] == "=":
                kids = s.children(n)
                if len(kids) == 2:
                    l = s.strip(kids[0])
                    if l is not None and l.kind in (K.DECL_REF_EXPR, K.MEMBER_REF_EXPR) \
                            and l.cursor.referenced == target:
                        sources.append(kids[1])
        if not sources:
            return False
        for src_node in sources:
            if s.text(src_node.start, src_node.end).replace(" ", "") == "-1":
                continue            # "no descriptor": never 0 either
            e = s.strip(src_node)
            if e is None or e.kind != K.CALL_EXPR or not FD_CALL.match(e.cursor.spelling or ""):
                return False
        return True

    # shrink-array
    def array(self, node):
        s = self.src
        T = s.ci.TypeKind
        t = node.cursor.type
        if t.kind != T.CONSTANTARRAY or not s.charlike(t.element_type):
            return
        if t.element_type.kind == T.CONSTANTARRAY or t.get_array_size() <= 2:
            return
        toks = s.tokens_in(node.start, node.end)
        names = [i for i, tok in enumerate(toks) if tok[2] == node.cursor.spelling]
        if not names or any(tok[2] == "=" for tok in toks):
            return          # an initialised array: halving it would not compile
        i = s.token_index(toks[names[0]][0]) + 1
        if i >= len(s.tokens) or s.tokens[i][2] != "[":
            return
        close = s.matching(i)
        start, end = s.tokens[i][1], s.tokens[close][0]
        size = s.text(start, end).strip()
        if not size:
            return
        new = str(int(size) // 2) if size.isdigit() else f"({size}) / 2"
        self.add("shrink-array", [(start, end, new)],
                 f"the buffer {node.cursor.spelling}[{size}] is half as big: [{new}]")

    # shrink-sizeof
    def size_argument(self, node):
        s = self.src
        T = s.ci.TypeKind
        toks = s.tokens_in(node.start, node.end)
        if not toks or toks[0][2] != "sizeof":
            return
        kids = s.children(node)
        if len(kids) != 1:
            return
        operand = s.strip(kids[0])
        while operand is not None and operand.kind == self.K.PAREN_EXPR:
            inner = s.children(operand)
            operand = s.strip(inner[0]) if inner else None
        if operand is None or operand.kind not in (self.K.DECL_REF_EXPR, self.K.MEMBER_REF_EXPR):
            return
        t = operand.cursor.type.get_canonical()
        if t.kind != T.CONSTANTARRAY or not s.charlike(t.element_type):
            return
        p = node.parent
        while p is not None and p.kind in (self.K.UNEXPOSED_EXPR, self.K.CSTYLE_CAST_EXPR) and \
                p.kind != self.K.CALL_EXPR:
            p = p.parent
        if p is None or p.kind != self.K.CALL_EXPR or not s.callee(p):
            return
        text = s.text(node.start, node.end)
        self.add("shrink-sizeof", [(node.start, node.end, f"{text} - 1")],
                 f"{s.callee(p)}() is told the buffer holds one byte less: {text} -> {text} - 1")

    # swap-shut-*, drop-flag: macro uses spelled in the file
    def macros(self):
        s = self.src
        for start, end, spelling, kind in s.tokens:
            if kind != "IDENTIFIER" or (spelling not in SHUT and spelling not in FLAGS):
                continue
            node = s.outermost.get((start, end))
            if node is None:
                continue
            if spelling in SHUT:
                for other in SHUT:
                    if other != spelling:
                        self.add(f"swap-shut-{other.split('_', 1)[1]}", [(start, end, other)],
                                 f"{spelling} -> {other}")
                continue
            self.drop_flag(node, spelling)

    def drop_flag(self, node, flag):
        s, K = self.src, self.K
        p = s.up(node)
        if p is None:
            return
        # the operand of `|` directly under p that contains the flag (the flag itself
        # when it is not in parentheses)
        if p.kind == K.BINARY_OPERATOR:
            op = s.binary_op(p)
            if op is None:
                return
            if op[2] == "|":
                # a setting, not a test: the whole `a | b | ...` is not an operand of
                # `&`, a comparison or a logical operator
                top = p
                while s.up(top) is not None and s.up(top).kind == K.BINARY_OPERATOR \
                        and (s.binary_op(s.up(top)) or (0, 0, ""))[2] == "|":
                    top = s.up(top)
                ctx = s.up(top)
                if ctx is not None and (ctx.kind == K.UNARY_OPERATOR or (
                        ctx.kind == K.BINARY_OPERATOR and (s.binary_op(ctx) or (0, 0, ""))[2] != "=")):
                    return
                lhs, rhs = s.children(p)
                expr = self.short(p.start, p.end)
                if s.within(node, rhs):
                    edit = (lhs.end, node.end, "")
                else:
                    edit = (node.start, rhs.start, "")
                self.add("drop-flag", [edit], f"no {flag}: `{expr}` without it")
                return
            if op[2] != "=":
                return          # a test (`events & EPOLLIN`), not a setting
        elif p.kind == K.COMPOUND_ASSIGNMENT_OPERATOR:
            toks = s.tokens_in(p.start, p.end)
            if not any(t[2] == "|=" for t in toks):
                return
        elif p.kind not in (K.CALL_EXPR, K.VAR_DECL, K.INIT_LIST_EXPR, K.RETURN_STMT):
            return
        self.add("drop-flag", [(node.start, node.end, "0")], f"no {flag}: {flag} -> 0")


def solution_files(lesson):
    """The files of a lesson's reference solution that mutants are made of."""
    d = REPO / "solutions" / lesson
    return sorted(d.glob("*.c")) + sorted((d / "lib").glob("*.c"))


def compile_args(lesson):
    return ["-std=c11", "-D_GNU_SOURCE"] + [f"-I{d}" for d in overlay.include_dirs(lesson)]


def mutants_of_file(lesson, path, ci=None, rel=None):
    """Every mutant of one solution file, in source order, each distinct in effect;
    rel: its path in the ids and diffs (by default solutions/<lesson>/...)."""
    src = Source(path, compile_args(lesson), ci)
    rel = rel or Path(path).resolve().relative_to(REPO).as_posix()
    found = Generator(src, lesson, rel).run()
    found.sort(key=lambda m: (m.line, m.col, m.op))
    seen, out = set(), []
    for m in found:
        key = m.apply(src.data)
        if key == src.data or key in seen or m.id in {x.id for x in out}:
            continue
        seen.add(key)
        out.append(m)
    return out, src.data


def mutants_of_lesson(lesson, ci=None):
    """[(mutant, original bytes of its file)] for a lesson's solution files."""
    out = []
    for path in solution_files(lesson):
        ms, data = mutants_of_file(lesson, path, ci)
        out += [(m, data) for m in ms]
    return out
