"""The grader's modules import one way: each only from its own layer or the layers
below (docs/architecture.md draws them), and lesson graders only from the package's
public face.  A new module must be given a layer here."""
import ast
from pathlib import Path

import grader

REPO = Path(__file__).resolve().parent.parent

# lowest first
LAYERS = [
    ("records and words", {"results", "failure", "markers", "helpers", "host", "calibrate",
                           "requirements", "term", "feedback_md", "pcap", "chapters", "buildflags"}),
    ("the kernel and processes", {"isolation", "identity", "cgroups", "proc", "peers", "probes",
                                  "capture", "sanitized", "tap", "states", "wire", "ladder", "ladder_svg"}),
    ("one test", {"lab", "plugin"}),
    ("the course", {"lessons", "contracts", "docs", "overlay", "mutations", "build", "testrun", "collect",
                    "html_report", "diagrams"}),
    ("grading that counts", {"sandbox", "session", "batch", "instructor", "mutate", "maintainer",
                             "gradebook", "similarity", "deadlines", "lms", "prairielearn"}),
    ("the command line", {"cli", "oci"}),
]
LAYER_OF = {m: i for i, (_, mods) in enumerate(LAYERS) for m in mods}
# what a lesson's grader may import besides the names in grader.__all__
PUBLIC_MODULES = {"probes", "capture", "peers"}


def grader_imports(path):
    """The grader modules a file imports, anywhere in it (module level or in a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "grader":
                found |= {a.name for a in node.names}
            elif node.module.startswith("grader."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("grader.")}
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in (REPO / "grader").glob("*.py")} - {"__init__"}
    assert modules <= set(LAYER_OF), f"give these a layer in {__file__}: {sorted(modules - set(LAYER_OF))}"


def test_modules_import_only_their_own_layer_or_lower():
    wrong = []
    for path in sorted((REPO / "grader").glob("*.py")):
        if path.stem == "__init__":
            continue
        for name in grader_imports(path) - set(grader.__all__):
            if LAYER_OF.get(name, -1) > LAYER_OF[path.stem]:
                wrong.append(f"{path.stem} ({LAYERS[LAYER_OF[path.stem]][0]}) imports {name} "
                             f"({LAYERS[LAYER_OF[name]][0]})")
    assert not wrong, "imports that point up:\n  " + "\n  ".join(wrong)


def test_lesson_graders_import_only_the_public_face():
    wrong = []
    for path in sorted(REPO.glob("chapters/*/test_*.py")):
        for name in grader_imports(path) - set(grader.__all__) - PUBLIC_MODULES:
            wrong.append(f"{path.relative_to(REPO)}: grader.{name}")
    assert not wrong, "lesson graders reaching into the grader's insides:\n  " + "\n  ".join(wrong)


def test_the_command_line_does_not_load_the_test_runtime():
    """`./lab hint`, the board: quick, and no pytest until a check runs."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", "import sys, grader.cli; print('pytest' in sys.modules)"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
