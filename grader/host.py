"""Facts about the machine the lab runs on that several parts need: who we really are,
where Debian keeps administrators' programs, who owns the checkout.  No pytest here:
the command line imports it before any test runs."""
import os
import shutil
from pathlib import Path

# Debian puts iptables, ip and nginx here, and a normal user's PATH leaves these out.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def real_root():
    """Root of the initial user namespace -- not the root `unshare -r` makes, which can
    create namespaces but cannot install packages, switch to another uid or own the
    host's loopback.  Root of a rootful container (podman, Docker, a Kubernetes pod)
    counts: it has the whole uid map and may switch uids; what the container withholds
    besides (namespaces, a writable cgroup file system, CAP_SYS_PTRACE) the sandbox finds
    out by trying, and says (docs/instructor.md, "What the sandbox keeps inside a
    container")."""
    if os.geteuid() != 0:
        return False
    try:
        first = Path("/proc/self/uid_map").read_text().split()
    except OSError:
        return False
    return first[:3] == ["0", "0", "4294967295"]


def path_with_sbin(path=None):
    """PATH with the sbin directories appended (those it lacks), in their usual order."""
    parts = [p for p in (os.environ.get("PATH", "") if path is None else path).split(":") if p]
    return ":".join(parts + [d for d in SBIN_DIRS if d not in parts])


def which(command):
    """shutil.which, also looking in the sbin directories a normal user's PATH lacks."""
    return shutil.which(command, path=path_with_sbin())


def checkout_owner(repo):
    """(uid, gid) of the user a checkout belongs to: whoever owns its top directory."""
    st = os.stat(repo)
    return st.st_uid, st.st_gid
