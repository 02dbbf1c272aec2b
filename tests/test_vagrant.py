"""The Vagrant VM installs exactly what the README's commands install: both go through
tools/setup.sh, which reads the one package list, tools/packages.txt."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import slowed

REPO = Path(__file__).resolve().parent.parent
VAGRANTFILE = REPO / "Vagrantfile"
INSTALLERS = r"\b(apt-get|apt|aptitude|dpkg|pip3?|snap|yum|dnf|curl|wget)\b"


def package_list(name):
    lines = (REPO / "tools" / name).read_text().splitlines()
    return [l.split()[0] for l in lines if l.strip() and not l.strip().startswith("#")]


def code_lines(path, comment="#"):
    """Non-empty lines with comments removed."""
    out = []
    for line in path.read_text().splitlines():
        line = line.split(comment, 1)[0].rstrip() if not line.lstrip().startswith("#!") else ""
        if line.strip():
            out.append(line)
    return out


def provision_blocks():
    """(the provision call, the inline script's lines) for each provisioner."""
    lines = VAGRANTFILE.read_text().splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if re.search(r"\.vm\.provision\b", line.split("#", 1)[0]):
            script = []
            m = re.search(r"<<[-~]?(\w+)", line)
            if m:
                for body in lines[i + 1:]:
                    if body.strip() == m.group(1):
                        break
                    script.append(body)
            blocks.append((line, script))
    return blocks


def test_the_vagrantfile_provisions_only_through_tools_setup_sh():
    blocks = provision_blocks()
    assert len(blocks) == 1, f"expected one provisioner, found {len(blocks)}"
    call, script = blocks[0]
    assert '"shell"' in call and "inline:" in call, "the provisioner must be an inline shell script"
    commands = [l.split("#", 1)[0].strip() for l in script if l.split("#", 1)[0].strip()]
    setup = [c for c in commands if re.search(r"(^|\s)(bash\s+)?/socklab/tools/setup\.sh$", c)]
    assert setup, "the provisioner must run /socklab/tools/setup.sh (with no options)"
    for c in commands:
        assert not re.search(INSTALLERS, c), f"the provisioner installs on its own: {c}"
    # the repository is synced to where the script looks for it
    assert re.search(r'synced_folder\s+"\."\s*,\s*"/socklab"', VAGRANTFILE.read_text())


def test_no_package_is_named_outside_the_package_lists():
    names = package_list("packages.txt") + package_list("packages-docs.txt")
    for path in (VAGRANTFILE, REPO / "tools" / "setup.sh"):
        for line in code_lines(path):
            for name in names:
                assert not re.search(rf"(?<![\w/.-]){re.escape(name)}(?![\w-])", line), \
                    f"{path.name} names the package {name} itself: {line.strip()}"


def test_tools_packages_txt_is_the_single_list():
    main, extra = package_list("packages.txt"), package_list("packages-docs.txt")
    assert len(main) == len(set(main)), "tools/packages.txt lists a package twice"
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", p) for p in main + extra)
    assert not set(main) & set(extra)
    assert "mkdocs" not in main, "the docs tools stay out of the main list (./lab test stays lean)"
    setup = (REPO / "tools" / "setup.sh").read_text()
    assert '"$here/packages.txt"' in setup
    # ./lab (the README's commands) runs the same setup step, with no options
    assert re.search(r'^"\$repo/tools/setup\.sh"\s*$', (REPO / "lab").read_text(), re.M)
    # nothing else in the repository runs an installer with a list of its own
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    runs_install = re.compile(r"(^|[;&|(]\s*|\bsudo\s+|run:\s*)(apt-get|apt)\s+(-\S+\s+)*install\b")
    offenders = []
    for rel in files:
        path = REPO / rel
        if rel == "tools/setup.sh" or path.suffix == ".md" or not path.is_file():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            code = line.strip()
            if code.startswith(("#", '"', "'", 'f"')) or \
                    re.search(r"\b(echo|print|exit|skip|fail)\b", code):
                continue                         # a message telling a person what to run
            if runs_install.search(code):
                offenders.append(f"{rel}:{n}: {code}")
    assert not offenders, "installs outside tools/setup.sh:\n  " + "\n  ".join(offenders)


def test_vagrant_validate(tmp_path):
    """`vagrant validate` accepts the Vagrantfile (`./lab test` installs vagrant first, as
    root: tools/setup.sh --vm)."""
    vagrant = shutil.which("vagrant")
    if not vagrant:
        pytest.skip("vagrant is not installed: sudo bash tools/setup.sh --vm "
                    "(the static checks above still ran)")
    # validate a copy, so the repository gets no .vagrant/ directory
    shutil.copy(VAGRANTFILE, tmp_path / "Vagrantfile")
    run = lambda *extra: subprocess.run([vagrant, "validate", "--no-tty", *extra], cwd=tmp_path,
                                        capture_output=True, text=True, timeout=slowed(120),
                                        stdin=subprocess.DEVNULL)
    res = run()
    if res.returncode != 0 and "No usable default provider" in res.stdout + res.stderr:
        # no VirtualBox or libvirt plugin here: check everything but the provider blocks
        res = run("--ignore-provider")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "validated successfully" in res.stdout
