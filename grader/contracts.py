"""A lesson's Contract and which tests check each of its clauses.

The Contract section of a lesson's README is what its graders may rely on, and nothing
else: under `## Contract`, one `### PROGRAM ARGS` heading per program (or library), and
under it one top-level `- ` bullet per clause (indented lines, nested bullets and code
blocks belong to the bullet above).  A test names the clauses it checks with
@contract("PROGRAM", "a phrase of the bullet", ...) (grader/markers.py); a phrase must
occur in exactly one bullet of that program's section, whitespace and case aside.

`./lab check NN --list` prints the map, and tests/test_contracts.py fails when a clause
has no test or a test names a phrase that matches no clause (or several).
"""
import re
from dataclasses import dataclass, field


@dataclass
class Clause:
    program: str
    heading: str                # the whole `###` line, arguments included
    text: str                   # the bullet, whitespace collapsed
    tests: list = field(default_factory=list)


def _norm(text):
    return re.sub(r"\s+", " ", text).strip().lower()


def clauses(readme_text):
    """[Clause] of a README's Contract section, in order."""
    out, heading, in_contract, in_fence = [], None, False, False
    current = None
    for line in readme_text.splitlines():
        if line.startswith("## "):
            in_contract = line.strip().lower() == "## contract"
            heading = None
            current = None
            continue
        if not in_contract:
            continue
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.startswith("### "):
            heading = line[4:].strip()
            current = None
            continue
        if heading is None:
            continue
        if not in_fence and line.startswith("- "):
            current = Clause(heading.split()[0], heading, line[2:].strip())
            out.append(current)
        elif current is not None and (line.startswith((" ", "\t")) or in_fence or line.startswith("```")):
            current.text += " " + line.strip()
        elif line.strip() == "" and not in_fence:
            continue
        else:
            current = None          # a paragraph after the bullets ends the last one
    for c in out:
        c.text = re.sub(r"\s+", " ", c.text).strip()
    return out


def resolve(clause_list, program, phrase):
    """The clauses of `program` whose text contains `phrase` (normally exactly one)."""
    want = _norm(phrase)
    return [c for c in clause_list if c.program == program and want in _norm(c.text)]


def coverage(readme_text, tests):
    """Map tests onto clauses.  tests: [(test name, [(program, phrase), ...])].
    Returns (clauses with .tests filled, problems: [str])."""
    found = clauses(readme_text)
    problems = []
    for name, refs in tests:
        for program, phrase in refs:
            hits = resolve(found, program, phrase)
            if len(hits) != 1:
                where = "no clause" if not hits else f"{len(hits)} clauses"
                problems.append(f"{name}: @contract({program!r}, {phrase!r}) matches {where}")
            for c in hits:
                if name not in c.tests:
                    c.tests.append(name)
    for c in found:
        if not c.tests:
            problems.append(f"no test checks  {c.program}: {c.text[:100]}")
    return found, problems


def render(found, problems, width=100):
    """The map as `./lab check NN --list` prints it, grouped by program."""
    lines, heading = [], None
    for c in found:
        if c.heading != heading:
            heading = c.heading
            lines.append(f"### {heading}")
        text = c.text if len(c.text) <= width - 4 else c.text[:width - 7] + "..."
        lines.append(f"  - {text}")
        for t in c.tests or ["(no test)"]:
            lines.append(f"      {t}")
    if problems:
        lines.append("")
        lines += [f"problem: {p}" for p in problems]
    return "\n".join(lines)


def collect(lesson_dirs):
    """{lesson: [(test name, [(program, phrase)])]} of the lessons' graders."""
    from grader import collect as collecting
    found = {}
    for case in collecting.cases(lesson_dirs):
        found.setdefault(case.lesson, []).append((case.name, list(case.contract)))
    return found
