"""tools/vm-test without a VM: its dry run shows the recipe, the qemu command and the steps,
and bad arguments are refused. The real run (an hour or more) is a release step, not CI."""
import re
import subprocess
import sys
from pathlib import Path

from conftest import slowed

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "vm-test"


def run(*args, env=None):
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          timeout=slowed(30), stdin=subprocess.DEVNULL, env=env)


def test_dry_run_prints_the_recipe_the_machine_and_both_users_steps(tmp_path):
    res = run("--dry-run", env={"PATH": "/usr/bin:/bin", "SOCKLAB_VM_CACHE": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    out = res.stdout
    # an image from Debian packages, with Debian's kernel, a vagrant user with passwordless sudo
    assert re.search(r"mmdebstrap .*--include=\S*linux-image-amd64", out)
    assert "openssh-server" in out and "useradd" in out and "NOPASSWD" in out
    assert str(tmp_path) in out, "the image cache follows SOCKLAB_VM_CACHE"
    for pkg in ("build-essential", "gcc", "cmake", "python3-pytest"):
        assert not re.search(rf"--include=\S*\b{pkg}\b", out), f"the image must not bring {pkg}"
    # qemu under nice, bounded, the Vagrantfile's vCPUs and memory, serial console to a file,
    # user-mode network
    qemu = [l for l in out.splitlines() if "qemu-system-x86_64" in l]
    assert qemu and all(l.strip().startswith("nice -n 19 timeout") for l in qemu)
    assert any("tcg" in l for l in qemu), "software emulation is always the fallback"
    for l in qemu:
        vagrantfile = (REPO / "Vagrantfile").read_text()
        cpus = re.search(r"vb\.cpus = (\d+)", vagrantfile)[1]
        memory = re.search(r"vb\.memory = (\d+)", vagrantfile)[1]
        assert f"-smp {cpus} " in l and f"-m {memory} " in l, l
        assert "-serial file:" in l and "-netdev user" in l
    # the README's two commands for both users, after the Vagrantfile's provisioning
    steps = [l.split() for l in out.split("steps (", 1)[1].splitlines()[1:] if l.strip()]
    titles = [" ".join(s[:4]) for s in steps]
    assert [s[0] for s in steps] == ["vagrant"] * 4 + ["root"] * 3
    assert "Vagrantfile provisioning" in out
    assert sum("./lab test" in l for l in out.splitlines() if "h00m" in l) == 2, titles
    # the dry run changes nothing
    assert not list(tmp_path.iterdir())


def test_one_user_and_some_steps():
    res = run("--dry-run", "--user", "root", "--steps", "lab", "--accel", "tcg")
    assert res.returncode == 0, res.stderr
    steps = res.stdout.split("steps (", 1)[1]
    assert "vagrant" not in steps and "./lab test" not in steps
    assert re.search(r"root\s+fresh clone", steps) and re.search(r"root\s+\./lab\s", steps)
    assert "-accel kvm" not in res.stdout


def test_argument_errors_exit_2_with_usage():
    for args in (["--user", "nobody"], ["--steps", "deploy"], ["--steps", ""], ["--frobnicate"]):
        res = run(*args, "--dry-run")
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "usage: tools/vm-test" in res.stderr


def test_the_tool_needs_only_its_own_package_list():
    listed = (REPO / "tools" / "packages-vmtest.txt").read_text().split()
    for pkg in ("mmdebstrap", "qemu-system-x86", "qemu-utils"):
        assert pkg in listed
    main = [l.split()[0] for l in (REPO / "tools" / "packages.txt").read_text().splitlines()
            if l.strip() and not l.startswith("#")]
    assert not {"mmdebstrap", "qemu-system-x86", "qemu-utils"} & set(main), \
        "students never need qemu: it stays out of tools/packages.txt"
    # installed by the tool itself, through the one setup script
    assert re.search(r'"setup\.sh"\), "--vmtest"\]', TOOL.read_text())


def test_a_plan_runs_chosen_steps_in_order_under_a_time_limit():
    res = run("--dry-run", "--accel", "tcg", "--time-limit", "100",
              "--plan", "vagrant:provision,vagrant:lab,vagrant:verify,root:check,vagrant:test")
    assert res.returncode == 0, res.stderr
    steps = [l.split()[0] + " " + l.split(None, 1)[1][:30].strip()
             for l in res.stdout.split("steps (", 1)[1].splitlines()[1:]
             if l.startswith("  ") and l.split()[0] in ("vagrant", "root")]
    assert [s.split()[0] for s in steps] == ["vagrant"] * 4 + ["root"] * 2 + ["vagrant"], steps
    assert "fresh clone" in steps[0] and "fresh clone" in steps[4], "each user's clone comes first"
    out = res.stdout
    assert re.search(r"vagrant\s+\./lab verify", out) and re.search(r"root\s+\./lab check --solutions", out)
    assert out.index("./lab check --solutions") < out.index("./lab test ")
    assert "bounded by 1h40m" in out


def test_plan_and_time_limit_errors():
    for args in (["--plan", "root:provision"], ["--plan", "alice:lab"], ["--plan", "vagrant"],
                 ["--plan", "vagrant:deploy"], ["--time-limit", "0"]):
        res = run(*args, "--dry-run")
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "usage: tools/vm-test" in res.stderr
