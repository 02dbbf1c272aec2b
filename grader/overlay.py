"""Overlay builds: one lesson's programs taken from the solutions build, with some of
its sources replaced -- a whole program, a patched program, or a file of the lesson's
own lib/ (then every program of the lesson is rebuilt with it).

Used by the grader self-tests (tests/test_selftests.py: known-wrong and known-good
programs) and by `./lab mutate` (each mutant of a reference solution).  The compiler
line is the one CMakeLists.txt gives: lib/*.c (the solutions build's objects of it), the
lesson's lib/ and those of the chapters it builds on (uses.txt), solution files first
and given (chapters/) files where the solution has none.
"""
import shutil
import subprocess
from pathlib import Path

from grader import buildflags, chapters

REPO = Path(__file__).resolve().parent.parent
# the build's flags (cmake/flags.txt) but -Werror, which werror=True adds back
CFLAGS = buildflags.flags("common", "warnings")


def include_dirs(lesson):
    """Header search path of a lesson's solution build: lib/, then each chapter's lib/
    (the solution's before the given one)."""
    dirs = [REPO / "lib"]
    for c in chapters.chain(lesson):
        dirs += [REPO / "solutions" / c / "lib", REPO / "chapters" / c / "lib"]
    return dirs


def chapter_lib_sources(lesson):
    """{(chapter, file name): path} of every chapter library file a lesson links: a
    solution's lib/ holds only what differs from the skeleton's, the rest is given code."""
    return {(c, p.name): p for c in chapters.chain(lesson) for where in ("chapters", "solutions")
            for p in sorted((REPO / where / c / "lib").glob("*.c"))}


def course_lib(solutions_build):
    """What lib/*.c contributes to a program's compiler line: the solutions build's own
    objects of it (CMakeLists.txt's `socklab` object library, the same flags), each
    newer than its source and every lib header -- a quarter of the compile time of each
    program -- else the sources themselves."""
    sources = sorted((REPO / "lib").glob("*.c"))
    newest_header = max((h.stat().st_mtime for h in (REPO / "lib").glob("*.h")), default=0)
    objects = [Path(solutions_build) / "CMakeFiles" / "socklab.dir" / "lib" / f"{c.name}.o" for c in sources]
    try:
        if all(o.stat().st_mtime >= max(c.stat().st_mtime, newest_header) for o, c in zip(objects, sources)):
            return [str(o) for o in objects]
    except OSError:
        pass
    return [str(c) for c in sources]


def program_sources(lesson):
    """{program file name: path} of the lesson's programs in the solutions build."""
    given = {p.name: p for p in sorted((REPO / "chapters" / lesson).glob("*.c"))}
    given.update({p.name: p for p in sorted((REPO / "solutions" / lesson).glob("*.c"))})
    return given


def build(lesson, solutions_build, dest, programs=(), lib=None, werror=False, timeout=120):
    """Build an overlay of `lesson` into dest (a build directory: dest/chapters/<lesson>/).

    programs: paths of replacement program sources (each named <program>.c);
    lib: {file name: path} replacing files of the lesson's own lib/ -- then all of the
    lesson's programs are rebuilt.  The other programs are copied from solutions_build.
    Returns (ok, compiler output of the first program that failed)."""
    lib = dict(lib or {})
    solutions_build = Path(solutions_build)
    bindir = Path(dest) / "chapters" / lesson
    if not (solutions_build / "chapters" / lesson).is_dir():
        return False, f"the {lesson} solutions did not build ({solutions_build})"
    shutil.copytree(solutions_build / "chapters" / lesson, bindir)
    libs = course_lib(solutions_build)
    includes = [arg for d in include_dirs(lesson) for arg in ("-I", str(d))]
    chapter_lib = chapter_lib_sources(lesson)
    # a sanitized copy is compiled from the sources the binary names, and only from those in
    # the course or the build (grader/sanitized.py): a file from elsewhere (a mutant) is copied in
    inside = Path(dest).resolve()
    for name, path in lib.items():
        if (lesson, name) not in chapter_lib:
            return False, f"{lesson} has no lib/{name}"
        path = Path(path)
        if REPO not in path.resolve().parents and inside not in path.resolve().parents:
            (inside / "src" / "lib").mkdir(parents=True, exist_ok=True)
            path = Path(shutil.copy(path, inside / "src" / "lib" / name))
        chapter_lib[(lesson, name)] = path
    sources = [Path(p) for p in programs]
    for i, src in enumerate(sources):
        if inside not in src.resolve().parents:
            (inside / "src").mkdir(parents=True, exist_ok=True)
            sources[i] = Path(shutil.copy(src, inside / "src" / src.name))
    if lib:
        own = {p.name for p in sources}
        sources += [p for name, p in sorted(program_sources(lesson).items()) if name not in own]
    flags = CFLAGS + (buildflags.flags("werror") if werror else [])
    chapter_lib = sorted(str(p) for p in chapter_lib.values())
    links = chapters.link_flags(lesson)
    for src in sources:
        try:
            res = subprocess.run(["gcc", *flags, *includes, *libs, *chapter_lib, str(src),
                                  "-o", str(bindir / src.stem), *links], capture_output=True, text=True,
                                 timeout=timeout)
        except subprocess.TimeoutExpired:
            return False, f"{src.name}: the compiler took more than {timeout} s"
        if res.returncode != 0:
            return False, f"{src} does not compile:\n{res.stderr}"
    return True, ""
