#!/usr/bin/env python3
"""tools/examples/mkbundle.py -- make an example function into an OCI bundle (config.json + rootfs/)
that `ember fn deploy --bundle`, `ember run`, `runc run` and `crun run` all accept.

    mkbundle.py --ember build/ember --c BINARY OUTDIR
    mkbundle.py --ember build/ember --python SDK.py --handler MOD.FN OUTDIR HANDLER_FILE...

The rootfs holds only the function: /var/task/<binary> (a static C binary), or for Python the
handler files in /var/task and the SDK in /opt/ember, with the host's /usr bind-mounted read-only
(Debian 12 is merged-/usr, so bin, lib, lib64 and sbin are symlinks into usr/). Empty /proc, /dev,
/sys and /tmp are mount points. config.json starts from `ember spec` (the runtime's defaults:
namespaces, capabilities, masked paths) and is changed only where a function needs it: its
command, environment, working directory, no terminal, a read-only root and a writable /tmp.

No channel fd is configured: started by hand the bundle runs once (stdin -> stdout); the function
host adds EMBER_CHANNEL_FD and the socket itself.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

TASK = "/var/task"
SDK_DIR = "/opt/ember"
# Lambda's default for /tmp; the host replaces it with the function's tmpMb.
TMP_MOUNT = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777", "size=512m"]}
USR_MOUNT = {"destination": "/usr", "type": "bind", "source": "/usr",
             "options": ["bind", "ro", "nosuid", "nodev"]}
PASSWD = "root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def make_rootfs(rootfs, python):
    for d in ("proc", "dev", "sys", "tmp", "etc", TASK[1:]):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    with open(os.path.join(rootfs, "etc/passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(rootfs, "etc/group"), "w") as f:
        f.write(GROUP)
    if python:
        os.makedirs(os.path.join(rootfs, "usr"))  # the mount point of the host's /usr
        for link in ("bin", "lib", "lib64", "sbin"):
            os.symlink("usr/" + link, os.path.join(rootfs, link))
        os.makedirs(os.path.join(rootfs, SDK_DIR[1:]))


def make_config(bundle, ember, args, env, python):
    subprocess.run([ember, "spec", "--bundle", bundle], check=True)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    # crun 1.8.1 (Debian 12) refuses any ociVersion but 1.0.x ("unknown version specified"),
    # and nothing here needs a newer one
    cfg["ociVersion"] = "1.0.2"
    proc = cfg["process"]
    proc["terminal"] = False
    proc["args"] = args
    proc["cwd"] = TASK
    proc["env"] = ["PATH=/usr/local/bin:/usr/bin:/bin"] + env
    cfg["root"] = {"path": "rootfs", "readonly": True}
    mounts = [m for m in cfg.get("mounts", []) if m["destination"] != "/tmp"]
    mounts.append(TMP_MOUNT)
    if python:
        mounts.append(USR_MOUNT)
    cfg["mounts"] = mounts
    with open(path + ".tmp", "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ember", required=True, help="the ember binary (for `ember spec`)")
    kind = ap.add_mutually_exclusive_group(required=True)
    kind.add_argument("--c", metavar="BINARY", help="a static binary built against libember_fn")
    kind.add_argument("--python", metavar="SDK", help="sdk/python/ember_fn.py")
    ap.add_argument("--zygote-lib", metavar="SO",
                   help="libember_zygote.so, the fork core for templates (Python bundles)")
    ap.add_argument("--handler", help="Python: MODULE.FUNCTION")
    ap.add_argument("--env", action="append", default=[], metavar="K=V", help="add to process.env")
    ap.add_argument("outdir")
    ap.add_argument("files", nargs="*", help="Python: the handler's files, copied to /var/task")
    a = ap.parse_args()
    if a.python and (not a.handler or not a.files):
        ap.error("--python needs --handler and the handler's files")
    if a.c and a.files:
        ap.error("--c takes the binary only")

    # build next to the target, then swap: a half-made bundle is never visible under its name
    tmp = a.outdir.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    rootfs = os.path.join(tmp, "rootfs")
    make_rootfs(rootfs, bool(a.python))
    task = os.path.join(rootfs, TASK[1:])
    if a.c:
        name = os.path.basename(a.c)
        shutil.copy2(a.c, os.path.join(task, name))
        args, env = [f"{TASK}/{name}"], []
    else:
        shutil.copy2(a.python, os.path.join(rootfs, SDK_DIR[1:], "ember_fn.py"))
        if a.zygote_lib:
            shutil.copy2(a.zygote_lib, os.path.join(rootfs, SDK_DIR[1:], "libember_zygote.so"))
        for f in a.files:
            shutil.copy2(f, os.path.join(task, os.path.basename(f)))
        args = ["/usr/bin/python3", f"{SDK_DIR}/ember_fn.py", a.handler]
        # the root is read-only: no __pycache__; C.UTF-8 so text I/O is UTF-8 whatever the host
        env = ["PYTHONDONTWRITEBYTECODE=1", "LANG=C.UTF-8"]
    make_config(tmp, a.ember, args, env + a.env, bool(a.python))
    shutil.rmtree(a.outdir, ignore_errors=True)
    os.rename(tmp, a.outdir)


if __name__ == "__main__":
    sys.exit(main())
