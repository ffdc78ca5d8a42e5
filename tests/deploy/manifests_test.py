#!/usr/bin/python3
"""Checks deploy/: the Kubernetes manifests, the Dockerfile, the systemd unit.

  manifests_test.py SOURCE_DIR [BIN_DIR]

Parses every deploy/kubernetes/*.yaml with python3-yaml and checks the
properties the deployment promises: least privilege on the devmemd DaemonSet
(capabilities drop ALL, add only NET_ADMIN; read-only root filesystem; no
privilege escalation; hostNetwork only in the kernel-provider DaemonSet, with
its reason written beside it; exactly the run dir, device-plugin dir and
pod-resources dir as hostPaths; system-node-critical), pinned image tags
(never latest), the ConfigMap's daemon config parsing as a DaemonConfig
(protoc --encode), the embedded Prometheus config passing promtool, the
example Job requesting devmem.dev/rx-queue: 2 as a non-root user, and a
multi-stage Debian 12 Dockerfile whose runtime user is not root. With
systemd-analyze present, `systemd-analyze verify` must accept the unit
(ExecStart pointed at BIN_DIR's devmemd). Exits 77 when python3-yaml is
missing.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    print(("ok   " if cond else "FAIL ") + what)


def containers(obj):
    spec = obj["spec"]["template"]["spec"]
    return spec, spec.get("containers", []) + spec.get("initContainers", [])


def image_pinned(image):
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def main():
    src = sys.argv[1]
    bin_dir = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    try:
        import yaml
    except ImportError:
        print("SKIP: python3-yaml is not installed")
        return 77
    kdir = os.path.join(src, "deploy/kubernetes")
    docs = {}
    for path in sorted(glob.glob(os.path.join(kdir, "*.yaml"))):
        with open(path) as f:
            parsed = [d for d in yaml.safe_load_all(f) if d is not None]
        check(bool(parsed), f"{os.path.basename(path)} parses")
        docs[os.path.basename(path)] = parsed
    by_kind = {}
    for name, ds in docs.items():
        for d in ds:
            by_kind.setdefault(d["kind"], []).append((name, d))

    for name, d in sum(by_kind.values(), []):
        if d["kind"] in ("DaemonSet", "Job", "Deployment"):
            for c in containers(d)[1]:
                check(image_pinned(c["image"]),
                      f"{name}: image {c['image']} has a pinned tag")

    daemonsets = by_kind.get("DaemonSet", [])
    check(len(daemonsets) >= 1, "a devmemd DaemonSet exists")
    wanted_paths = {"/run/devmemd", "/var/lib/kubelet/device-plugins",
                    "/var/lib/kubelet/pod-resources"}
    for name, ds in daemonsets:
        spec, cs = containers(ds)
        text = open(os.path.join(kdir, name)).read()
        check(spec.get("priorityClassName") == "system-node-critical",
              f"{name}: priorityClassName system-node-critical")
        paths = {v["hostPath"]["path"] for v in spec.get("volumes", [])
                 if "hostPath" in v}
        check(paths == wanted_paths,
              f"{name}: hostPaths are exactly {sorted(wanted_paths)} "
              f"(got {sorted(paths)})")
        args = " ".join(sum((c.get("args", []) for c in cs), []))
        kernel = "--provider=sim" not in args
        if spec.get("hostNetwork", False):
            check(kernel, f"{name}: hostNetwork only with the kernel provider")
            check(re.search(r"hostNetwork: true\. The kernel provider", text)
                  is not None, f"{name}: hostNetwork explained in the file")
        else:
            check(not kernel,
                  f"{name}: the kernel provider needs hostNetwork")
        check("--resource-name=devmem.dev/rx-queue" in args,
              f"{name}: resource name devmem.dev/rx-queue")
        check("--kubelet-dir=/var/lib/kubelet/device-plugins" in args,
              f"{name}: --kubelet-dir turns the device plugin on")
        for c in cs:
            sc = c.get("securityContext", {})
            caps = sc.get("capabilities", {})
            check(caps.get("drop") == ["ALL"], f"{name}: capabilities drop ALL")
            added = caps.get("add", [])
            check(added == (["NET_ADMIN"] if kernel else []),
                  f"{name}: capabilities add {added} "
                  f"(want {'NET_ADMIN only' if kernel else 'none'})")
            check(sc.get("readOnlyRootFilesystem") is True,
                  f"{name}: readOnlyRootFilesystem")
            check(sc.get("allowPrivilegeEscalation") is False,
                  f"{name}: allowPrivilegeEscalation false")
            check(not sc.get("privileged", False), f"{name}: not privileged")
            for m in c.get("volumeMounts", []):
                if m["mountPath"] == "/var/lib/kubelet/pod-resources":
                    check(m.get("readOnly") is True,
                          f"{name}: pod-resources mounted read-only")

    # The daemon config in the ConfigMap is a valid DaemonConfig.
    cms = {d["metadata"]["name"]: d for _, d in by_kind.get("ConfigMap", [])}
    check("devmemd-config" in cms, "ConfigMap devmemd-config exists")
    protoc = shutil.which("protoc")
    if "devmemd-config" in cms and protoc:
        conf = cms["devmemd-config"]["data"]["devmemd.conf"]
        r = subprocess.run(
            [protoc, "-I", os.path.join(src, "proto"),
             "--encode=devmem.v1.DaemonConfig", "devmem/v1/config.proto"],
            input=conf.encode(), capture_output=True)
        check(r.returncode == 0,
              "devmemd.conf parses as devmem.v1.DaemonConfig "
              + r.stderr.decode().strip())
    promtool = shutil.which("promtool")
    if "devmemd-prometheus" in cms and promtool:
        with tempfile.TemporaryDirectory() as t:
            p = os.path.join(t, "scrape.yml")
            with open(p, "w") as f:
                f.write(cms["devmemd-prometheus"]["data"]["devmemd-scrape.yml"])
            r = subprocess.run([promtool, "check", "config", p],
                               capture_output=True)
            err = (r.stdout + r.stderr).decode()
            if "kubernetes_sd_configs not found" in err:
                # Debian builds prometheus without Kubernetes discovery.
                print("skip promtool on the in-cluster scrape config: this "
                      "promtool has no kubernetes_sd_configs")
            else:
                check(r.returncode == 0,
                      "in-cluster scrape config passes promtool " + err)

    jobs = by_kind.get("Job", [])
    check(len(jobs) == 1, "one example Job")
    for name, job in jobs:
        spec, cs = containers(job)
        limits = cs[0].get("resources", {}).get("limits", {})
        check(limits.get("devmem.dev/rx-queue") == 2,
              f"{name}: requests devmem.dev/rx-queue: 2")
        psc = spec.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0,
              f"{name}: runs as non-root")
        check("devmem-demo-job" in " ".join(cs[0].get("command", [])),
              f"{name}: binds with the client library (devmem-demo-job)")

    df = open(os.path.join(src, "deploy/Dockerfile")).read()
    froms = re.findall(r"^FROM\s+(\S+)", df, re.M)
    check(len(froms) >= 2, "Dockerfile is multi-stage")
    check(all(re.match(r"debian:12(\b|-)", f) for f in froms),
          f"Dockerfile stages are Debian 12 ({froms})")
    users = re.findall(r"^USER\s+(\S+)", df.split(froms[-1], 1)[-1], re.M)
    check(bool(users) and not users[-1].startswith("0") and
          users[-1] != "root", "Dockerfile runtime user is not root")

    analyze = shutil.which("systemd-analyze")
    if analyze and bin_dir:
        unit = open(os.path.join(src, "deploy/systemd/devmemd.service")).read()
        with tempfile.TemporaryDirectory() as t:
            p = os.path.join(t, "devmemd.service")
            with open(p, "w") as f:
                f.write(unit.replace("/usr/local/bin/devmemd",
                                     os.path.join(bin_dir, "devmemd")))
            r = subprocess.run([analyze, "verify", p], capture_output=True)
            out = (r.stdout + r.stderr).decode().strip()
            check(r.returncode == 0, "systemd-analyze verify: " + out)
    else:
        print("skip systemd-analyze verify (not installed)")

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
