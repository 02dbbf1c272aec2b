"""Sanitizer copies of a lesson's programs, built by the grader when a test needs one.

Some behaviours are about memory safety ("a length equal to the buffer size must not
write one byte past it") or thread safety ("a connection handed to another thread is
never touched by two at once").  A plain build cannot see a one-byte overflow or a data
race; an AddressSanitizer or ThreadSanitizer build stops (or warns) and names the line.
A test that needs this calls, before it starts programs,

    from grader.sanitized import use_sanitized_programs
    use_sanitized_programs(lab, "address")     # ASan + UBSan; or "thread" (TSan)

(an autouse fixture does it for a whole test file).  Every lab.start() of that test
then runs a sanitized copy: the binary itself when it is already instrumented (a
`--sanitize` build), otherwise a copy compiled from the very source files the binary
was built from -- their paths are in its debug information, so a solutions build, a
self-test's patched copy and a chapter library of an earlier lesson (uses.txt) all
come out right.  Objects and programs are cached by content (build/sanitized/), so
every build and self-test shares what is unchanged.  When no copy can be built (no compiler, no
debug info, a source that moved) the plain binary runs and the report says so.
"""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from grader import buildflags, chapters, identity
from grader.failure import GradeFailure

REPO = Path(__file__).resolve().parent.parent
KINDS = {
    # kind: a symbol every binary instrumented so contains (flags: cmake/flags.txt)
    "address": b"__asan_init",      # ASan + UBSan
    "thread": b"__tsan_init",
}
ENV = {
    "address": {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:print_legend=0",
                "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"},
    # exitcode=66: a race makes the program exit 66 when it ends, besides the report
    "thread": {"TSAN_OPTIONS": "halt_on_error=0:exitcode=66:second_deadlock_stack=1"},
}


def flags(kind):
    return buildflags.flags("common", kind)


def is_instrumented(binary, kind):
    return KINDS[kind] in Path(binary).read_bytes()


def build_root(binary):
    """BUILD of BUILD/chapters/<lesson>/<program>."""
    return Path(binary).resolve().parents[2]


def recorded_sources(binary):
    """The .c files `binary` was compiled from, as its debug information names them --
    those in the course or the build only: a binary is the submission's, and could name
    any file (the instructor's solutions, say)."""
    data = Path(binary).read_bytes()
    roots = (REPO, build_root(binary))
    found = []
    for m in re.finditer(rb"/[\x21-\x7e]+?\.c(?=\x00)", data):
        path = Path(os.fsdecode(m.group(0)))
        if any(r in path.parents for r in roots) and path.is_file() and path not in found:
            found.append(path)
    return found


def guessed_sources(name, lesson):
    """For a build without -g: the skeleton's program, lib/ and the chapter libraries."""
    main = REPO / "chapters" / lesson / f"{name}.c"
    if not main.is_file():
        return []
    libs = sorted(REPO.glob("lib/*.c"))
    for c in chapters.chain(lesson):
        libs += sorted((REPO / "chapters" / c / "lib").glob("*.c"))
    return [main] + libs


def include_dirs(sources, lesson):
    dirs = [REPO / "lib"] + [s.parent for s in sources]
    for c in chapters.chain(lesson):
        dirs += [REPO / "solutions" / c / "lib", REPO / "chapters" / c / "lib"]
    out = []
    for d in dirs:
        if d.is_dir() and d not in out:
            out += [d]
    return [a for d in out for a in ("-I", str(d))]


def link_libraries(lesson):
    """-l flags for the system libraries the lesson's programs link (links.txt of the
    lesson and of the chapters it builds on)."""
    return chapters.link_flags(lesson)


def _gcc(kind, args):
    # the submission's code is compiled with the submission's rights (grader/identity.py)
    res = subprocess.run(["gcc", *flags(kind), *args], capture_output=True, text=True, timeout=120,
                         preexec_fn=identity.as_builder)
    if res.returncode != 0:
        lines = res.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else "gcc failed")


def _key(kind, *parts):
    digest = hashlib.sha256(" ".join(flags(kind)).encode())
    for part in parts:
        digest.update(part + b"\0")
    return digest.hexdigest()[:20]


def _publish(tmp, out):
    """Atomic: concurrent graders (xdist) may build the same file at once."""
    os.replace(tmp, out)
    return out


def headers_digest(includes):
    """The names and contents of every header the include path offers: an object is
    reusable exactly when its source and these are unchanged."""
    parts = []
    for d in includes[1::2]:
        for h in sorted(Path(d).glob("*.h")):
            parts += [h.name.encode(), h.read_bytes()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest().encode()


def _object(cache, kind, source, includes, headers):
    """One source compiled once per content (with its headers), shared by every program
    and every build -- a self-test's patched program reuses the unpatched library."""
    key = _key(kind, str(source).encode(), source.read_bytes(), headers)
    out = cache / "obj" / f"{source.stem}-{key}.o"
    if not out.exists():
        _mkdir(out.parent)
        tmp = out.with_name(f".{out.name}.{os.getpid()}")
        _gcc(kind, [*includes, "-c", str(source), "-o", str(tmp)])
        _publish(tmp, out)
    return out


def build(cache, kind, sources, name, lesson):
    """Compile and link `sources` with the sanitizer `kind`; returns the program's path."""
    includes = include_dirs(sources, lesson)
    headers = headers_digest(includes)
    objects = [_object(cache, kind, s, includes, headers) for s in sources]
    out = cache / kind / _key(kind, *(bytes(o.name, "ascii") for o in objects)) / name
    if out.exists():
        return out
    _mkdir(out.parent)
    tmp = out.with_name(f".{name}.{os.getpid()}")
    _gcc(kind, [*map(str, objects), "-o", str(tmp), *link_libraries(lesson)])
    return _publish(tmp, out)


def sanitized_program(binary, name, lesson, kind):
    """(path to run, note or None).  Graded for a grade that counts (a builder uid is
    set), the copy is always compiled here, by the builder, never taken from the build:
    a binary could claim to be instrumented (the text `__asan_init` is easy to embed)."""
    counts = identity.builder() is not None
    if not counts and is_instrumented(binary, kind):
        return binary, None
    sources = recorded_sources(binary) or guessed_sources(name, lesson)
    if not sources and not counts:
        return binary, f"{name}: no source files found for a {kind} sanitizer copy; ran the plain build"
    cache = REPO / "build" / "sanitized"
    if counts:                              # compiled by the builder, into a folder of its own
        cache = build_root(binary) / "sanitized"
    elif not os.access(cache if cache.exists() else cache.parent, os.W_OK):
        cache = Path(tempfile.gettempdir()) / f"socklab-sanitized-{os.getuid()}"
    try:
        if not sources:
            raise RuntimeError("no source files found")
        return build(cache, kind, sources, name, lesson), None
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        if counts:      # without the copy the test cannot judge: that is no pass
            raise GradeFailure(expected=f"the grader builds a {kind} sanitizer copy of {name}",
                               happened=f"it could not: {e}",
                               hint="the same sources must compile with -fsanitize (see the compiler's "
                                    "line above)")
        return binary, f"{name}: could not build a {kind} sanitizer copy ({e}); ran the plain build"


def _mkdir(path):
    """A cache folder, the builder's when one compiles (it writes the objects there)."""
    if identity.builder() is None:
        path.mkdir(parents=True, exist_ok=True)
    elif not path.is_dir():
        subprocess.run(["mkdir", "-p", str(path)], check=True, capture_output=True, timeout=30,
                       preexec_fn=identity.as_builder)


def use_sanitized_programs(lab, kind="address"):
    """Make this test's lab.start() run `kind` sanitizer copies of the lesson's programs."""
    plain = lab.program_path

    def program_path(name):
        path, note = sanitized_program(plain(name), name, lab.lesson, kind)
        if note:
            lab.note("sanitizer", note)
        return path

    lab.program_path = program_path
    lab.default_env.update(ENV[kind])
    if kind == "thread" and shutil.which("setarch"):
        # TSan needs the classic address-space layout: some kernels randomise mmap more
        # than its shadow memory allows ("unexpected memory mapping"); -R turns that off
        lab.launcher = ["setarch", os.uname().machine, "-R"]


def sanitizer_report(program, frames=3):
    """What the sanitizer said, in a few lines (error, access, top frames), or None."""
    text = program.stderr_text()
    if "Sanitizer" not in text and "runtime error:" not in text:
        return None
    keep = []
    left = frames               # frames still to show for the current access
    for line in text.splitlines():
        line = line.strip()
        if re.search(r"(ERROR|WARNING): \w+Sanitizer|runtime error:|^(READ|WRITE) of size|"
                     r"^(Previous )?(read|write|atomic \w+) of size|^Location is", line):
            line = re.sub(r"^==\d+==", "", line)
            keep.append(re.sub(r" (on address|at 0x)\S* .*| at pc .*| by (main )?thread T\d+.*", "", line))
            left = frames       # a data race has two accesses: show both stacks
        elif re.match(r"#\d+ ", line) and left > 0 and not re.search(r"sysdeps|libasan|libubsan|libtsan| \.\./|\(/lib", line):
            keep.append("  " + re.sub(r"^#\d+ (0x[0-9a-f]+ )?| \(\S+\+0x[0-9a-f]+\)$", "", line))
            left -= 1
        elif line.startswith("SUMMARY:"):
            keep.append(line)
            break
    return "\n".join(keep) or None


OVERFLOW_HINT = ("AddressSanitizer stopped the program at the line named under `sanitizer`: a byte "
                 "read or written past the end of a buffer. A buffer of N bytes has indexes 0 .. N-1; "
                 "a string function (strlen, strcpy, %s) needs a NUL inside the buffer, and a line "
                 "you added a '\\n' to has lost the NUL that was there")


def explain_sanitized(failure, *programs, hint=OVERFLOW_HINT):
    """When a sanitizer spoke in one of `programs`, put its report in `failure` and make
    `hint` the failure's hint (what the student reads is then the memory bug, not its
    consequence: a missing line, an early exit).  Returns the failure, to raise."""
    for program in programs:
        report = sanitizer_report(program)
        if report:
            failure.sections["sanitizer"] = report
            failure.hint = hint
            break
    return failure
