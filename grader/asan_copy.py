"""AddressSanitizer copies of a lesson's programs, built by the grader when needed.

Some behaviours are about memory safety ("a length equal to the buffer size must not
write one byte past it").  A plain build cannot see a one-byte overflow; an ASan
build aborts on it and names the line.  A lesson that needs this puts

    from grader.asan_copy import use_asan_programs

    @pytest.fixture(autouse=True)
    def asan(lab):
        use_asan_programs(lab)

in its test file.  Every lab.start() of that test then runs an ASan+UBSan copy of the
program: the binary itself when it is already instrumented (a --sanitize build),
otherwise a copy compiled from the source file the binary was built from (its path is
in the debug information) and lib/*.c, cached by content next to the binary
(<build>/chapters/<lesson>/.asan-copies/).
When no copy can be built (no compiler, no debug info, a source that moved) the plain
binary is used and the failure report says so.
"""
import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLAGS = ["-std=c11", "-D_GNU_SOURCE", "-g", "-O1", "-pthread", "-fno-omit-frame-pointer",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]


def is_instrumented(binary):
    return b"__asan_init" in Path(binary).read_bytes()


def source_of(binary, name, lesson):
    """The .c file `binary` was compiled from, found through the paths it records."""
    data = Path(binary).read_bytes()
    suffix = f"/{name}.c".encode()
    for m in re.finditer(rb"/[\x21-\x7e]*?" + re.escape(suffix) + rb"(?=\x00)", data):
        path = Path(os.fsdecode(m.group(0)))
        if path.is_file():
            return path
    guess = REPO / "chapters" / lesson / f"{name}.c"     # a student build without -g
    return guess if guess.is_file() else None


def _gcc(args):
    res = subprocess.run(["gcc", *FLAGS, *args], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        lines = res.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else "gcc failed")


def _key(*parts):
    digest = hashlib.sha256(" ".join(FLAGS).encode())
    for part in parts:
        digest.update(part + b"\0")
    return digest.hexdigest()[:20]


def _publish(tmp, out):
    """Atomic: concurrent graders (xdist) may build the same file at once."""
    os.replace(tmp, out)
    return out


def _object(cache, source, includes):
    """lib/*.c compiled once and shared by every program (keyed by content)."""
    out = cache / "obj" / f"{source.stem}-{_key(str(source).encode(), source.read_bytes())}.o"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}")
        _gcc([*includes, "-c", str(source), "-o", str(tmp)])
        _publish(tmp, out)
    return out


def build(cache, source, name):
    """Compile source + lib/*.c (+ the chapter's lib/*.c) with ASan; returns the path."""
    includes = ["-I", str(REPO / "lib"), "-I", str(source.parent / "lib")]
    libs = sorted((REPO / "lib").glob("*.c")) + sorted((source.parent / "lib").glob("*.c"))
    objects = [_object(cache, f, includes) for f in libs]
    out = cache / _key(str(source).encode(), source.read_bytes(), *(bytes(o.name, "ascii") for o in objects)) / name
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{name}.{os.getpid()}")
    _gcc([*includes, str(source), *map(str, objects), "-o", str(tmp)])
    return _publish(tmp, out)


def asan_program(binary, name, lesson):
    """(path to run, note or None)."""
    if is_instrumented(binary):
        return binary, None
    source = source_of(binary, name, lesson)
    if source is None:
        return binary, f"{name}: no source file found for an ASan copy; ran the plain build"
    cache = Path(binary).parent / ".asan-copies"
    if not os.access(Path(binary).parent, os.W_OK):
        cache = Path(tempfile.gettempdir()) / f"socklab-asan-{os.getuid()}"
    try:
        return build(cache, source, name), None
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        return binary, f"{name}: could not build an ASan copy ({e}); ran the plain build"


def use_asan_programs(lab):
    """Make lab.start() run ASan copies of this lesson's programs."""
    plain = lab.program_path

    def program_path(name):
        path, note = asan_program(plain(name), name, lab.lesson)
        if note:
            lab.note("sanitizer", note)
        return path

    lab.program_path = program_path


def sanitizer_report(program, frames=3):
    """What the sanitizer said, in a few lines (error, access, top frames), or None."""
    text = program.stderr_text()
    if "Sanitizer" not in text and "runtime error:" not in text:
        return None
    keep = []
    for line in text.splitlines():
        line = line.strip()
        if re.search(r"ERROR: \w+Sanitizer|runtime error:|^(READ|WRITE) of size", line):
            line = re.sub(r"^==\d+==", "", line)
            keep.append(re.sub(r" (on address|at 0x)\S* .*| at pc .*", "", line))
        elif re.match(r"#\d+ ", line) and frames > 0 and not re.search(r"sysdeps|libasan|libubsan| \.\./|\(/lib", line):
            keep.append("  " + re.sub(r"^#\d+ 0x[0-9a-f]+ ", "", line))
            frames -= 1
        elif line.startswith("SUMMARY:"):
            keep.append(line)
            break
    return "\n".join(keep) or None
