"""`./lab image`: the grader as an OCI image built from Debian packages only, and the
Kubernetes Jobs that grade a class with it in shards.

    ./lab image build [--tag T] [--rebuild-base] [--save FILE.tar]
    ./lab image k8s --image IMG --shards N [--lessons 01,02] [--out DIR] ...
    ./lab image check-k8s DIR_OR_FILE...
    ./lab image podman-shards --class DIR --out DIR --shards N   (the same plan, on one machine)
    ./lab image shard            (in a container: one shard, from JOB_COMPLETION_INDEX)
    ./lab image merge            (in a container: the shards into one gradebook)

The image: a Debian 12 root made by mmdebstrap (variant minbase, the packages of
tools/packages.txt and tools/packages-similarity.txt, from the Debian mirrors this
machine's apt uses), the course (tracked files, without tests/, .ci/ and solutions/) at
/opt/socklab, and three ways in:

    /autograder/run_autograder             Gradescope's layout (submission in
                                           /autograder/submission, results in
                                           /autograder/results/results.json)
    /opt/socklab/tools/image/prairielearn  a PrairieLearn external grader entrypoint
                                           (grader/prairielearn.py)
    /opt/socklab/lab image shard|merge     one shard of a batch, and the merge

The base root is cached (~/.cache/socklab-image, or $SOCKLAB_IMAGE_CACHE) under a hash
of its recipe; buildah turns it and the course into the image (FROM scratch: nothing
is pulled from a registry).
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = "bookworm"
VARIANT = "minbase"
PACKAGE_LISTS = ("packages.txt", "packages-similarity.txt")
DEFAULT_MIRRORS = ["deb http://deb.debian.org/debian bookworm main",
                   "deb http://deb.debian.org/debian bookworm-updates main",
                   "deb http://deb.debian.org/debian-security bookworm-security main"]
COURSE = "/opt/socklab"
LEFT_OUT = ("tests/", ".ci/", "solutions/")
DEFAULT_TAG = "localhost/socklab-grader"
# Slot uids of one batch: 3 per slot, at most sandbox.MOST_SLOTS slots.  Containers on one
# kernel share uids (and so RLIMIT_NPROC counts): each shard gets a range of its own.
UID_RANGE = 1536
UID_BASE = 63000


def say(msg):
    print(f"image: {msg}", flush=True)


# -- the base root: mmdebstrap ---------------------------------------------------------------

def packages():
    names = []
    for name in PACKAGE_LISTS:
        for line in (REPO / "tools" / name).read_text().splitlines():
            line = line.split("#", 1)[0].split()
            if line and line[0] not in names:
                names.append(line[0])
    return names


def _source_entries(text, deb822):
    """(uri, suites, components, signed_by) of each 'deb' entry of one sources file."""
    entries = []
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields, key = {}, None
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0].isspace() and key:
                    fields[key] += " " + line.strip()
                    continue
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            for uri in fields.get("uris", "").split():
                entries.append((uri, fields.get("suites", "").split(), fields.get("components", "").split(),
                                fields.get("signed-by", "")))
    else:
        for line in text.splitlines():
            line = line.split("#", 1)[0].split()
            if len(line) < 3 or line[0] != "deb":
                continue
            opts = ""
            if line[1].startswith("["):
                end = next(i for i, w in enumerate(line) if w.endswith("]"))
                opts, line = " ".join(line[1:end + 1]), [line[0], *line[end + 1:]]
            m = re.search(r"signed-by=(\S+?)\]?(?:\s|$)", opts)
            entries.append((line[1], [line[2]], line[3:], m.group(1) if m else ""))
    return entries


def debian_mirrors(root=Path("/")):
    """The Debian 12 entries of this machine's apt sources, as mmdebstrap's one-line
    mirrors: the same mirror (or proxy) apt uses here, never a third party's repository
    (those are signed by other keys).  Debian's own mirrors when there are none."""
    files = [root / "etc/apt/sources.list", *sorted((root / "etc/apt/sources.list.d").glob("*"))]
    mirrors = []
    for f in files:
        if not f.is_file() or f.suffix not in (".list", ".sources", ""):
            continue
        for uri, suites, components, signed in _source_entries(f.read_text(errors="replace"),
                                                               f.suffix == ".sources"):
            if signed and "debian-archive-keyring" not in signed:
                continue
            for suite in suites:
                if suite.split("-")[0] != SUITE or "main" not in components:
                    continue
                line = f"deb {uri} {suite} main"
                if line not in mirrors:
                    mirrors.append(line)
    return mirrors if any(m.split()[2] == SUITE for m in mirrors) else list(DEFAULT_MIRRORS)


def recipe():
    return {"suite": SUITE, "variant": VARIANT, "include": packages(), "mirrors": debian_mirrors(),
            "arch": "amd64"}


def cache_root():
    if os.environ.get("SOCKLAB_IMAGE_CACHE"):
        return Path(os.environ["SOCKLAB_IMAGE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "socklab-image"


def base_dir():
    key = hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / f"{SUITE}-{key}"


def mmdebstrap_cmd(dest):
    r = recipe()
    return ["nice", "-n", "19", "mmdebstrap", "--mode=root", "--format=tar", f"--variant={r['variant']}",
            "--include=" + ",".join(r["include"]), r["suite"], str(dest), *r["mirrors"]]


def build_base(rebuild=False):
    """The cached root file system (a tar), made by mmdebstrap if missing."""
    d = base_dir()
    tar = d / "rootfs.tar"
    if tar.is_file() and not rebuild:
        meta = json.loads((d / "meta.json").read_text())
        say(f"base root cached: {tar} (mmdebstrap took {meta['seconds']} s)")
        return tar
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    say(f"making the Debian {SUITE} root with mmdebstrap (a few minutes): {', '.join(recipe()['mirrors'])}")
    t0 = time.monotonic()
    with open(tmp / "mmdebstrap.log", "wb") as log:
        rc = subprocess.run(mmdebstrap_cmd(tmp / "rootfs.tar"), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL).returncode
    if rc != 0:
        tail = (tmp / "mmdebstrap.log").read_text(errors="replace").splitlines()[-20:]
        raise SystemExit("mmdebstrap failed (exit %d); its log ends:\n%s" % (rc, "\n".join(tail)))
    meta = {"seconds": round(time.monotonic() - t0), "recipe": recipe(),
            "bytes": (tmp / "rootfs.tar").stat().st_size}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)
    say(f"base root made in {meta['seconds']} s ({meta['bytes'] >> 20} MiB)")
    return tar


# -- the image: buildah ---------------------------------------------------------------------

def containerfile(revision):
    return f"""\
# socklab's grader, from Debian packages only (grader/oci.py writes this file).
FROM scratch
ADD rootfs.tar /
COPY course/ {COURSE}/
COPY autograder/ /autograder/
ENV LANG=C.UTF-8 SOCKLAB_COURSE={COURSE}
WORKDIR {COURSE}
LABEL org.opencontainers.image.title="socklab grader" \\
      org.opencontainers.image.revision="{revision}" \\
      org.opencontainers.image.base.name="debian:{SUITE} (mmdebstrap {VARIANT})"
CMD ["/bin/bash"]
"""


def course_files():
    from grader.instructor import tracked_files
    return [f for f in tracked_files() if not f.startswith(LEFT_OUT)]


def revision():
    out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True)
    rev = out.stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return rev + ("-dirty" if dirty else "")


def build_context(ctx, base_tar):
    """rootfs.tar, course/, autograder/run_autograder and the Containerfile in ctx."""
    from grader.instructor import RUN_AUTOGRADER
    try:
        os.link(base_tar, ctx / "rootfs.tar")
    except OSError:
        shutil.copyfile(base_tar, ctx / "rootfs.tar")
    for rel in course_files():
        dest = ctx / "course" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest, follow_symlinks=False)
    (ctx / "autograder").mkdir()
    run = ctx / "autograder" / "run_autograder"
    run.write_text(RUN_AUTOGRADER)
    run.chmod(0o755)
    rev = revision()
    (ctx / "Containerfile").write_text(containerfile(rev))
    return rev


def build(tag=None, rebuild_base=False, save=None):
    from grader import host
    if not host.real_root():
        raise SystemExit("building the image needs root (mmdebstrap --mode=root, buildah as root)")
    missing = [p for p in ("mmdebstrap", "buildah") if not shutil.which(p)]
    if missing:
        raise SystemExit(f"missing: {' '.join(missing)}; install them with: tools/setup.sh --image")
    t0 = time.monotonic()
    base = build_base(rebuild_base)
    t1 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="context-", dir=base.parent) as ctx:
        ctx = Path(ctx)
        rev = build_context(ctx, base)
        tags = [tag] if tag else [f"{DEFAULT_TAG}:{rev}", f"{DEFAULT_TAG}:latest"]
        argv = ["nice", "-n", "19", "buildah", "build", "--quiet", "--layers=false", "-f",
                str(ctx / "Containerfile"), *[a for t in tags for a in ("-t", t)], str(ctx)]
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL).returncode
        if rc != 0:
            raise SystemExit(f"buildah build failed (exit {rc})")
    t2 = time.monotonic()
    say(f"built {', '.join(tags)}: base {t1 - t0:.0f} s, image {t2 - t1:.0f} s")
    if save:
        subprocess.run(["buildah", "push", "--quiet", tags[0], f"oci-archive:{Path(save).resolve()}:{tags[0]}"],
                       check=True, stdin=subprocess.DEVNULL)
        say(f"saved as an OCI archive: {save} ({Path(save).stat().st_size >> 20} MiB)")
    return 0


# -- running it with podman ----------------------------------------------------------------------

# What the sandbox needs from the container (docs/instructor.md, "Grading on many
# machines"): --privileged gives it everything it has on the host.
PODMAN_SANDBOX = ["--privileged"]
CAP_SYS_RESOURCE = 24


def _capable(bit):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def _hybrid_cgroups_with_v2_controllers():
    from grader import cgroups
    mounts = cgroups._mounts()
    v2 = [m for m, kind, _ in mounts if kind == "cgroup2"]
    if not v2 or not any(kind == "cgroup" for _, kind, _ in mounts):
        return False
    try:
        return bool((v2[0] / "cgroup.controllers").read_text().split())
    except OSError:
        return False


def podman_run():
    """`podman ... run --rm` with what this machine needs: crun (Debian 12's default
    runtime) refuses a hybrid cgroup machine whose v2 half holds a controller (runc
    does not); and without CAP_SYS_RESOURCE podman cannot raise the hard limits it gives
    containers by default, so they are set to what podman itself has (podman holds
    itself to 32768 processes)."""
    argv = ["podman"]
    if _hybrid_cgroups_with_v2_controllers() and shutil.which("runc"):
        argv += ["--runtime", "runc"]
    argv += ["run", "--rm"]
    if not _capable(CAP_SYS_RESOURCE):
        import resource
        files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        procs = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        argv += ["--ulimit", f"nofile={files}:{files}", "--ulimit", f"nproc={procs}:{procs}"]
    return argv


# -- in a container: one shard, and the merge -------------------------------------------------

def shard_plan(env):
    """(argv of `./lab batch`, extra environment) for the shard this pod is: Kubernetes
    numbers an Indexed Job's pods 0..N-1 in JOB_COMPLETION_INDEX; --shard counts 1..N."""
    try:
        index, count = int(env["JOB_COMPLETION_INDEX"]), int(env["SOCKLAB_SHARDS"])
    except KeyError as e:
        raise SystemExit(f"{e.args[0]} is not set (an Indexed Job sets JOB_COMPLETION_INDEX; "
                         "the manifest sets SOCKLAB_SHARDS)")
    except ValueError:
        raise SystemExit("JOB_COMPLETION_INDEX and SOCKLAB_SHARDS must be whole numbers")
    if not 0 <= index < count:
        raise SystemExit(f"JOB_COMPLETION_INDEX {index} is not in 0..{count - 1}")
    results = Path(env.get("SOCKLAB_RESULTS", "/results"))
    argv = ["batch", env.get("SOCKLAB_SUBMISSIONS", "/class/submissions"), "--out", str(results / f"shard-{index + 1}"),
            "--shard", f"{index + 1}/{count}"]
    for var, opt in (("SOCKLAB_LESSONS", "--lessons"), ("SOCKLAB_JOBS", "--jobs"),
                     ("SOCKLAB_MEMORY_MIB", "--memory"), ("SOCKLAB_DEADLINES", "--deadlines")):
        if env.get(var):
            argv += [opt, env[var]]
    extra = {} if env.get("SOCKLAB_UID_BASE") else {"SOCKLAB_UID_BASE": str(UID_BASE + UID_RANGE * index)}
    return argv, extra


def merge_plan(env):
    """(gradebook folder, shard folders, roster or None) of the merge Job; refuses a
    shard that left no folder (its pod failed), so no student is silently left out."""
    count = int(env.get("SOCKLAB_SHARDS", "0"))
    if count < 1:
        raise SystemExit("SOCKLAB_SHARDS is not set")
    results = Path(env.get("SOCKLAB_RESULTS", "/results"))
    shards = [results / f"shard-{i}" for i in range(1, count + 1)]
    missing = [str(s) for s in shards if not (s / "students").is_dir()]
    if missing:
        raise SystemExit(f"no result from {', '.join(missing)}: did every shard finish?")
    return results / "gradebook", shards, env.get("SOCKLAB_ROSTER") or None


def run_shard():
    argv, extra = shard_plan(os.environ)
    os.environ.update(extra)
    say(f"shard {argv[argv.index('--shard') + 1]}: ./lab {' '.join(argv)}")
    from grader import cli
    return cli.main(argv)


def run_merge():
    from grader import gradebook
    out, shards, roster = merge_plan(os.environ)
    return gradebook.merge(out, shards, roster=roster)


def podman_shards(image, class_dir, out, shards, lessons=None, jobs=2, deadlines=None, roster=None,
                  submissions="submissions", parallel=False, extra=()):
    """The Kubernetes plan on one machine: each shard graded by `./lab image shard` in a
    container of its own (as an Indexed Job's pod: JOB_COMPLETION_INDEX, the class
    read-only at /class, results at /results), then `./lab gradebook merge` here."""
    class_dir, out = Path(class_dir).resolve(), Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {"SOCKLAB_SHARDS": str(shards), "SOCKLAB_SUBMISSIONS": f"/class/{submissions}", "SOCKLAB_JOBS": str(jobs),
           **({"SOCKLAB_LESSONS": lessons} if lessons else {}),
           **({"SOCKLAB_DEADLINES": f"/class/{deadlines}"} if deadlines else {})}
    procs, t0 = [], time.monotonic()
    for index in range(shards):
        argv = [*podman_run(), *PODMAN_SANDBOX, *extra, "-v", f"{class_dir}:/class:ro", "-v", f"{out}:/results",
                *[a for k, v in {**env, "JOB_COMPLETION_INDEX": str(index)}.items() for a in ("-e", f"{k}={v}")],
                image, f"{COURSE}/lab", "image", "shard"]
        log = open(out / f"shard-{index + 1}.log", "wb")
        started = time.monotonic()
        procs.append((index, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL),
                      started, log))
        if not parallel:
            _finish(*procs[-1])
    if parallel:
        for p in procs:
            _finish(*p)
    failed = [i + 1 for i, p, _, _ in procs if p.returncode != 0]
    if failed:
        raise SystemExit(f"shard(s) {', '.join(map(str, failed))} failed: see {out}/shard-N.log")
    say(f"{shards} shards graded in {time.monotonic() - t0:.0f} s; merging")
    from grader import gradebook
    return gradebook.merge(out / "gradebook", [out / f"shard-{i}" for i in range(1, shards + 1)],
                           roster=(class_dir / roster) if roster else None)


def _finish(index, proc, started, log):
    proc.wait()
    log.close()
    say(f"shard {index + 1}: exit {proc.returncode} after {time.monotonic() - started:.0f} s")


# -- Kubernetes manifests ------------------------------------------------------------------------

def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (dict, list)):     # only empty ones get here
        return json.dumps(v)
    return json.dumps(str(v))          # a JSON string is a YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Block YAML of dicts, lists and scalars (strings quoted): enough for manifests,
    and no dependency beyond the standard library."""
    pad = "  " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 1))
            else:
                lines.append(f"{pad}{k}: {_yaml_scalar(v)}")
    else:
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                inner = to_yaml(v, indent + 1).splitlines()
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_yaml_scalar(v)}")
    return "\n".join(lines)


def manifests(image, shards, name="socklab", lessons=None, jobs=2, memory_mib=1024, submissions="submissions",
              deadlines=None, roster=None, class_claim="socklab-class", results_claim="socklab-results",
              privileged=True, namespace=None):
    """(grade Job, merge Job) as dicts: an Indexed Job of `shards` pods, each grading
    `./lab batch --shard I/N` into the results volume, and a Job that merges them.  The
    class volume (read-only) holds the submissions folder and, beside it, the deadlines
    and roster files (paths relative to the volume)."""
    if shards < 1:
        raise SystemExit("--shards must be at least 1")
    labels = {"app.kubernetes.io/name": "socklab", "app.kubernetes.io/component": "grader"}
    env = [{"name": "SOCKLAB_SHARDS", "value": str(shards)},
           {"name": "SOCKLAB_SUBMISSIONS", "value": f"/class/{submissions}"},
           {"name": "SOCKLAB_RESULTS", "value": "/results"},
           {"name": "SOCKLAB_JOBS", "value": str(jobs)}]
    if lessons:
        env.append({"name": "SOCKLAB_LESSONS", "value": lessons})
    if memory_mib:
        env.append({"name": "SOCKLAB_MEMORY_MIB", "value": str(memory_mib)})
    if deadlines:
        env.append({"name": "SOCKLAB_DEADLINES", "value": f"/class/{deadlines}"})
    # What grading in a container needs (docs/instructor.md, "Grading on many machines"):
    # privileged gives the whole sandbox; the three capabilities give each test its
    # network namespace (so the grades are the same) but neither the private view (the
    # runtime masks parts of /proc) nor the cgroup limits (a read-only /sys/fs/cgroup).
    security = {"privileged": True} if privileged else {
        "capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN", "NET_RAW"]},
        "seccompProfile": {"type": "Unconfined"}}
    volumes = [{"name": "class", "persistentVolumeClaim": {"claimName": class_claim, "readOnly": True}},
               {"name": "results", "persistentVolumeClaim": {"claimName": results_claim}}]
    mounts = [{"name": "class", "mountPath": "/class", "readOnly": True},
              {"name": "results", "mountPath": "/results"}]

    def job(suffix, command, pod_env, completions=None, cpu=1, memory=512):
        spec = {"backoffLimit": 2 * (completions or 1), "ttlSecondsAfterFinished": 86400}
        if completions:
            spec.update({"completionMode": "Indexed", "completions": completions, "parallelism": completions})
        pod_meta = {"labels": {**labels, "socklab/job": f"{name}-{suffix}"}}
        if not privileged and suffix == "grade":    # AppArmor's default profile forbids mounts
            pod_meta["annotations"] = {f"container.apparmor.security.beta.kubernetes.io/{suffix}": "unconfined"}
        spec["template"] = {
            "metadata": pod_meta,
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": suffix, "image": image, "imagePullPolicy": "IfNotPresent",
                                     "command": [f"{COURSE}/lab", "image", command], "env": pod_env,
                                     "securityContext": security, "volumeMounts": mounts,
                                     "resources": {"requests": {"cpu": str(cpu), "memory": f"{memory}Mi"},
                                                   "limits": {"memory": f"{memory + 512}Mi"}}}],
                     "volumes": volumes}}
        meta = {"name": f"{name}-{suffix}", "labels": labels}
        if namespace:
            meta["namespace"] = namespace
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}

    grade = job("grade", "shard", env, completions=shards, cpu=jobs, memory=jobs * memory_mib)
    merge_env = [e for e in env if e["name"] in ("SOCKLAB_SHARDS", "SOCKLAB_RESULTS")]
    if roster:
        merge_env.append({"name": "SOCKLAB_ROSTER", "value": f"/class/{roster}"})
    merge = job("merge", "merge", merge_env)
    # the merge compares the whole class's programs: the same volumes, but nothing to sandbox
    merge["spec"]["template"]["spec"]["containers"][0].pop("securityContext")
    return grade, merge


def write_manifests(out, **kw):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    grade, merge = manifests(**kw)
    head = ("# socklab: written by `./lab image k8s`; apply grade.yaml, wait for it, then merge.yaml:\n"
            f"#   kubectl apply -f grade.yaml && kubectl wait --for=condition=complete --timeout=24h "
            f"job/{grade['metadata']['name']} && kubectl apply -f merge.yaml\n")
    for name, obj in (("grade.yaml", grade), ("merge.yaml", merge)):
        (out / name).write_text(head + to_yaml(obj) + "\n")
    say(f"wrote {out / 'grade.yaml'} ({kw['shards']} shards of {kw['image']}) and {out / 'merge.yaml'}")
    return [out / "grade.yaml", out / "merge.yaml"]


# -- checking manifests without a cluster ------------------------------------------------------

def load_manifest(path):
    """The documents of a manifest file (YAML via python3-yaml; JSON without it)."""
    text = Path(path).read_text()
    try:
        import yaml
    except ImportError:
        if text.lstrip().startswith(("{", "[")):
            return [json.loads(text)]
        raise SystemExit(f"reading {path} needs python3-yaml (tools/setup.sh --k8s installs it)")
    return [d for d in yaml.safe_load_all(text) if d is not None]


def schema_errors(doc):
    """What the Kubernetes API would refuse in a batch/v1 Job, checked offline against
    the models of Debian's python3-kubernetes: unknown fields (at any depth), values of
    the wrong type, missing required fields.  None when that package is missing."""
    try:
        from kubernetes import client
    except ImportError:
        return None
    kinds = {("batch/v1", "Job"): "V1Job"}
    top = kinds.get((doc.get("apiVersion"), doc.get("kind")))
    if top is None:
        return [f"{doc.get('apiVersion')}/{doc.get('kind')}: not a kind this check knows"]
    errors = []

    def walk(value, type_name, where):
        if type_name.startswith("list["):
            if not isinstance(value, list):
                errors.append(f"{where}: expected a list")
                return
            for i, v in enumerate(value):
                walk(v, type_name[5:-1], f"{where}[{i}]")
            return
        if type_name.startswith("dict("):
            if not isinstance(value, dict):
                errors.append(f"{where}: expected a mapping")
                return
            inner = type_name[5:-1].split(", ", 1)[1]
            for k, v in value.items():
                walk(v, inner, f"{where}.{k}")
            return
        simple = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}
        if type_name in simple:
            ok = isinstance(value, simple[type_name]) and not (type_name == "int" and isinstance(value, bool))
            if not ok:
                errors.append(f"{where}: expected {type_name}, got {type(value).__name__}")
            return
        if type_name in ("datetime", "date"):
            return
        cls = getattr(client, type_name, None)
        if cls is None:
            return
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a {type_name} mapping")
            return
        by_json = {v: k for k, v in cls.attribute_map.items()}
        for k, v in value.items():
            if k not in by_json:
                errors.append(f"{where}.{k}: no such field in {type_name}")
                continue
            walk(v, cls.openapi_types[by_json[k]], f"{where}.{k}")

    walk(doc, top, doc.get("kind", "?"))
    if not errors:
        try:        # the models' own checks: required fields, allowed values
            client.ApiClient()._ApiClient__deserialize(doc, top)
        except (ValueError, TypeError) as e:
            errors.append(f"{doc.get('kind')}: {e}")
    return errors


def kubectl_parse(path):
    """kubectl reads the file as `kubectl apply` would (every document, apiVersion and
    kind, field names of the right YAML shape) with no cluster: `annotate --local` is one
    of the few verbs that never asks a server.  (None, why) when kubectl is missing."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return None, "kubectl is not installed"
    with tempfile.TemporaryDirectory() as home:     # no kubeconfig: nothing can reach a cluster
        r = subprocess.run([kubectl, "annotate", "--local", "-f", str(path), "socklab/checked=yes", "-o", "json"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
                                "KUBECONFIG": str(Path(home) / "none")})
    if r.returncode != 0:
        return False, r.stderr.strip()
    return True, r.stdout


def check_k8s(paths):
    """Every manifest given (files, or folders of *.yaml), checked offline: kubectl's
    parse and the python3-kubernetes schema.  Says which checks ran."""
    files = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    failed = False
    for f in files:
        docs = load_manifest(f)
        ok, out = kubectl_parse(f)
        if ok is None:
            parse = f"not parsed by kubectl ({out})"
        elif ok:
            parse = "kubectl parses it"
        else:
            parse, failed = f"kubectl refuses it: {out}", True
        problems = []
        checked = True
        for d in docs:
            errs = schema_errors(d)
            if errs is None:
                checked = False
            else:
                problems += errs
        failed = failed or bool(problems)
        schema = ("schema not checked (install python3-kubernetes: tools/setup.sh --k8s)" if not checked else
                  "schema: " + ("; ".join(problems) if problems else "every field known, of its type"))
        print(f"{f}: {len(docs)} document(s); {parse}; {schema}")
    return 1 if failed else 0


# -- the command line --------------------------------------------------------------------------

def add_parser(sub):
    p = sub.add_parser("image", help="the grader as an OCI image (Debian packages only), and Kubernetes Jobs")
    s = p.add_subparsers(dest="action", required=True)
    b = s.add_parser("build", help="build the image with mmdebstrap and buildah (as root)")
    b.add_argument("--tag", help=f"image name (default {DEFAULT_TAG}:REVISION and :latest)")
    b.add_argument("--rebuild-base", action="store_true", help="run mmdebstrap again, not the cached root")
    b.add_argument("--save", metavar="FILE.tar", help="also write the image as an OCI archive")
    k = s.add_parser("k8s", help="write Kubernetes Jobs: the shards of a batch, then the merge")
    k.add_argument("--image", required=True)
    k.add_argument("--shards", type=int, required=True)
    k.add_argument("--out", default="k8s", help="folder for grade.yaml and merge.yaml (default ./k8s)")
    k.add_argument("--name", default="socklab", help="prefix of the Jobs' names")
    k.add_argument("--namespace")
    k.add_argument("--lessons")
    k.add_argument("--jobs", type=int, default=2, help="submissions graded at once in each pod")
    k.add_argument("--memory", type=int, default=1024, metavar="MIB", help="memory bound of one submission")
    k.add_argument("--submissions", default="submissions", metavar="DIR",
                   help="the submissions folder, relative to the class volume (default: submissions)")
    k.add_argument("--deadlines", metavar="FILE", help="a deadlines TOML, relative to the class volume")
    k.add_argument("--roster", metavar="FILE", help="a roster CSV for the merged gradebook, relative to the class volume")
    k.add_argument("--class-claim", default="socklab-class", help="PersistentVolumeClaim of the class (read-only)")
    k.add_argument("--results-claim", default="socklab-results",
                   help="PersistentVolumeClaim for the results (ReadWriteMany when the pods may land on several nodes)")
    k.add_argument("--capabilities", action="store_true",
                   help="SYS_ADMIN, NET_ADMIN, NET_RAW and no seccomp instead of privileged (no cgroup limits)")
    ps = s.add_parser("podman-shards", help="grade a class in shards, each in a podman container, then merge")
    ps.add_argument("--image", default=f"{DEFAULT_TAG}:latest")
    ps.add_argument("--class", dest="class_dir", required=True,
                    help="the folder holding the submissions folder (and deadlines, roster)")
    ps.add_argument("--out", required=True, help="shard-N/ folders, their logs, and the merged gradebook/")
    ps.add_argument("--shards", type=int, required=True)
    ps.add_argument("--submissions", default="submissions")
    ps.add_argument("--lessons")
    ps.add_argument("--jobs", type=int, default=2)
    ps.add_argument("--deadlines", metavar="FILE", help="relative to --class")
    ps.add_argument("--roster", metavar="FILE", help="relative to --class")
    ps.add_argument("--parallel", action="store_true", help="all shards at once (default: one after another)")
    c = s.add_parser("check-k8s", help="check manifests offline (kubectl parse, python3-kubernetes schema)")
    c.add_argument("paths", nargs="+")
    s.add_parser("shard", help="in a container: grade shard JOB_COMPLETION_INDEX+1 of SOCKLAB_SHARDS")
    s.add_parser("merge", help="in a container: merge SOCKLAB_RESULTS/shard-* into SOCKLAB_RESULTS/gradebook")
    return p


def cmd(args):
    if args.action == "build":
        return build(args.tag, args.rebuild_base, args.save)
    if args.action == "k8s":
        write_manifests(args.out, image=args.image, shards=args.shards, name=args.name, lessons=args.lessons,
                        jobs=args.jobs, memory_mib=args.memory, submissions=args.submissions,
                        deadlines=args.deadlines, roster=args.roster, class_claim=args.class_claim,
                        results_claim=args.results_claim,
                        privileged=not args.capabilities, namespace=args.namespace)
        return 0
    if args.action == "check-k8s":
        return check_k8s(args.paths)
    if args.action == "podman-shards":
        return podman_shards(args.image, args.class_dir, args.out, args.shards, args.lessons, args.jobs,
                             args.deadlines, args.roster, args.submissions, args.parallel)
    if args.action == "shard":
        return run_shard()
    if args.action == "merge":
        return run_merge()
    return 2
