#!/usr/bin/env python3
"""The checks of deploy/ against the code, for deploy_test.sh.

  deploy_check.py static RENDERED KEYS [CHECK]
      RENDERED: `docker-compose config` output (defaults interpolated);
      KEYS: `fedmarket-admin config --keys --json`. Prints one line per
      check, "ok - what" or "not ok - what" followed by "# why" lines.
      CHECK: only the checks whose description starts with it.
  deploy_check.py exec RENDERED SERVICE [ARG]...
      Runs SERVICE's own command and environment here, in place of this
      process: the image's paths map to the checkout and the build,
      compose host names to the local stack. FM_N_DB, FM_N_RPC, FM_N_S3,
      FM_N_S3_KEY, FM_N_S3_SECRET: the stack; FM_N_PORT_BASE: where port
      54390 maps (the others follow); FM_N_ROOT: the folder standing for
      secrets (FM_N_ROOT/secrets) and volumes; FM_N_KEYS: the KEYS file.
  deploy_check.py print RENDERED SERVICE
      The argv and environment exec would use, as JSON.
  deploy_check.py health RENDERED SERVICE
      SERVICE's healthcheck command with its port mapped, one word a line.

Needs FM_TOP and FM_BIN; FM_BUILD for the build's dependency files.
"""

import glob
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.parse

import yaml

TOP = os.environ["FM_TOP"]
BIN = os.environ["FM_BIN"]
BUILD = os.environ.get("FM_BUILD", os.path.join(TOP, "build"))
COMPOSE = os.environ.get("FM_COMPOSE") or \
    os.path.join(TOP, "deploy", "docker-compose.yml")
DOCKERFILE = os.environ.get("FM_DOCKERFILE") or \
    os.path.join(TOP, "deploy", "Dockerfile")
README = os.path.join(TOP, "deploy", "README.md")
ENTRYPOINT_FILLS = ("FEDMARKET_ESCROW_ADDRESS", "FEDMARKET_OPERATOR_ADDRESS")
CHAIN_DIR = "/var/lib/fedmarket/chain"


def env_name(key):
    return "FEDMARKET_" + key.upper()


# ---- reading the files ----------------------------------------------------

def load_rendered(path):
    with open(path) as f:
        return yaml.safe_load(f)


def argv_of(value):
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


class Dockerfile:
    """What the tests need of deploy/Dockerfile: stages, packages, copies."""

    def __init__(self, path):
        with open(path) as f:
            text = f.read()
        # one logical line per instruction
        text = re.sub(r"\\\n", " ", text)
        self.lines = [l.strip() for l in text.splitlines()
                      if l.strip() and not l.strip().startswith("#")]
        self.args = {}
        self.stages = []  # [{"from":..., "name":..., "lines": [...]}]
        for l in self.lines:
            word, _, rest = l.partition(" ")
            word = word.upper()
            if word == "ARG" and not self.stages:
                k, _, v = rest.partition("=")
                self.args[k.strip()] = v.strip()
            elif word == "FROM":
                parts = rest.split()
                image = re.sub(r"\$\{(\w+)\}",
                               lambda m: self.args.get(m.group(1), ""),
                               parts[0])
                name = parts[2] if len(parts) >= 3 and \
                    parts[1].upper() == "AS" else None
                self.stages.append({"from": image, "name": name,
                                    "lines": []})
            elif self.stages:
                self.stages[-1]["lines"].append((word, rest))

    def apt_packages(self, stage):
        pkgs = set()
        for word, rest in stage["lines"]:
            if word != "RUN":
                continue
            for cmd in rest.split("&&"):
                toks = cmd.split()
                if "apt-get" in toks and "install" in toks:
                    pkgs.update(t for t in toks[toks.index("install") + 1:]
                                if not t.startswith("-"))
        return pkgs

    def last(self, stage, word):
        vals = [rest for w, rest in stage["lines"] if w == word]
        return vals[-1] if vals else None

    def copies(self, stage):
        """[(sources, dest, from_stage)] of COPY instructions"""
        out = []
        for word, rest in stage["lines"]:
            if word != "COPY":
                continue
            toks = rest.split()
            opts = [t for t in toks if t.startswith("--")]
            paths = [t for t in toks if not t.startswith("--")]
            src_stage = None
            for o in opts:
                if o.startswith("--from="):
                    src_stage = o[len("--from="):]
            out.append((paths[:-1], paths[-1], src_stage))
        return out

    def json_instr(self, stage, word):
        v = self.last(stage, word)
        return json.loads(v) if v else None


def image_map(df):
    """(image path prefix, checkout path) pairs from the runtime stage's
    COPY lines: the build's bin/ is FM_BIN, other sources are in TOP."""
    pairs = []
    for srcs, dest, from_stage in df.copies(df.stages[-1]):
        for src in srcs:
            if from_stage:
                # /src/bin/ of the build stage is what make put in bin/
                local = BIN if src.rstrip("/").endswith("/bin") else None
            else:
                local = os.path.join(TOP, src)
            if local is None:
                continue
            if dest.endswith("/") and not src.endswith("/"):
                pairs.append((dest + os.path.basename(src), local))
            else:
                pairs.append((dest.rstrip("/"), local.rstrip("/")))
    return pairs


def map_image_path(pairs, path):
    for prefix, local in sorted(pairs, key=lambda p: -len(p[0])):
        if path == prefix or path.startswith(prefix + "/"):
            return local + path[len(prefix):]
    return None


def dockerignore_allows(path):
    """Docker's rules, enough for our file: last matching pattern wins, a
    pattern also matches the parent folders of a path."""
    with open(os.path.join(TOP, ".dockerignore")) as f:
        pats = [l.strip() for l in f
                if l.strip() and not l.strip().startswith("#")]
    allowed = True
    parts = path.strip("/").split("/")
    cands = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    for p in pats:
        neg = p.startswith("!")
        pat = (p[1:] if neg else p).strip("/")
        regex = re.escape(pat).replace(r"\*\*/", "(.*/)?") \
            .replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, c) for c in cands):
            allowed = neg
    return allowed


def required_table():
    """rows of the required-settings table of deploy/README.md"""
    with open(README) as f:
        text = f.read()
    m = re.search(r"<!-- required-settings[^>]*-->\n(.*?)<!-- "
                  r"/required-settings -->", text, re.S)
    if not m:
        return None
    rows = []
    for line in m.group(1).splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4:
            continue
        rows.append({
            "container": cells[0].strip("`"),
            "binary": re.sub(r"`([^`]*)`.*", r"\1", cells[1]),
            "port": None if cells[2] in ("—", "-", "") else int(cells[2]),
            "keys": re.findall(r"`([a-z0-9_]+)`", cells[3]),
        })
    return rows


# ---- the stack's containers ---------------------------------------------

class Stack:
    def __init__(self, rendered, keys):
        self.doc = rendered
        self.svcs = rendered.get("services") or {}
        self.keys = keys
        self.key_names = {k["key"] for k in keys}
        self.df = Dockerfile(DOCKERFILE)
        self.pairs = image_map(self.df)

    def ours(self, name):
        """runs the fedmarket image"""
        s = self.svcs[name]
        return "build" in s and \
            s["build"].get("dockerfile") == "deploy/Dockerfile"

    def env(self, name):
        e = self.svcs[name].get("environment") or {}
        if isinstance(e, list):
            e = dict(x.split("=", 1) for x in e)
        return {k: "" if v is None else str(v) for k, v in e.items()}

    def argv(self, name):
        """what runs: the entrypoint (the image's unless overridden), then
        the command"""
        s = self.svcs[name]
        if "entrypoint" in s:
            ep = argv_of(s["entrypoint"])
        else:
            ep = self.df.json_instr(self.df.stages[-1], "ENTRYPOINT") or []
        return ep + argv_of(s.get("command"))

    def program(self, name):
        """the fedmarket program or script the container exists for"""
        for tok in self.argv(name):
            base = os.path.basename(tok)
            if base == "entrypoint":
                continue
            return base
        return None

    def secrets(self, name):
        out = []
        for x in self.svcs[name].get("secrets") or []:
            out.append(x["source"] if isinstance(x, dict) else x)
        return out

    def volumes(self, name):
        """{container path: volume or host path}"""
        out = {}
        for v in self.svcs[name].get("volumes") or []:
            if isinstance(v, dict):
                out[v["target"]] = v.get("source")
            else:
                parts = v.split(":")
                out[parts[1]] = parts[0]
        return out

    def published(self, name):
        """container ports published"""
        out = set()
        for p in self.svcs[name].get("ports") or []:
            if isinstance(p, dict):
                out.add(int(p["target"]))
            else:
                out.add(int(str(p).split("/")[0].split(":")[-1]))
        return out

    def depends(self, name):
        d = self.svcs[name].get("depends_on") or {}
        if isinstance(d, list):
            return {x: "service_started" for x in d}
        return {k: (v or {}).get("condition", "service_started")
                for k, v in d.items()}

    def waits_for(self, name, target, condition, seen=None):
        """name starts only after target reached condition, directly or
        through a container it waits for"""
        seen = seen or set()
        if name in seen:
            return False
        seen.add(name)
        dep = self.depends(name)
        if dep.get(target) == condition:
            return True
        return any(self.waits_for(d, target, condition, seen) for d in dep
                   if d in self.svcs)

    def listen_port(self, name):
        for k, v in self.env(name).items():
            if k.endswith("_LISTEN"):
                return int(v.rsplit(":", 1)[1])
        return None

    def listen_key(self, name):
        prog = self.program(name) or ""
        return prog[len("fedmarket-"):] + "_listen"


# ---- static checks -------------------------------------------------------

def check_names(st):
    allowed = {env_name(k) for k in st.key_names} | {"FEDMARKET_CONFIG"}
    bad = []
    files = [COMPOSE, DOCKERFILE, README] + \
        sorted(glob.glob(os.path.join(TOP, "deploy", "compose", "*")))
    for path in files:
        with open(path) as f:
            for i, line in enumerate(f, 1):
                for var in re.findall(r"FEDMARKET_[A-Z0-9_]+", line):
                    if var not in allowed:
                        bad.append("%s:%d: %s is not in the configuration "
                                   "table" % (os.path.relpath(path, TOP), i,
                                              var))
    return bad


def check_overrides(st):
    """every variable the compose file takes from the shell is documented"""
    with open(COMPOSE) as f:
        text = "".join(l for l in f if not l.lstrip().startswith("#"))
    with open(README) as f:
        readme = f.read()
    bad = []
    for var in sorted(set(re.findall(r"(?<!\$)\$\{([A-Za-z0-9_]+)", text))):
        if "`%s`" % var not in readme:
            bad.append("the compose file takes %s from the shell; "
                       "deploy/README.md does not say so" % var)
    return bad


def check_env_loads(st):
    """every container's environment is accepted by cfg_load: known keys,
    values of the right type and range"""
    bad = []
    for name in sorted(st.svcs):
        if not st.ours(name):
            continue
        env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent"}
        env.update(st.env(name))
        r = subprocess.run([os.path.join(BIN, "fedmarket-admin"), "config"],
                           env=env, capture_output=True, text=True)
        if r.returncode != 0:
            bad.append("%s: %s" % (name, r.stderr.strip()))
    return bad


def check_programs(st):
    bad = []
    progs = set()
    for name in sorted(st.svcs):
        if not st.ours(name):
            continue
        for tok in st.argv(name):
            if re.fullmatch(r"fedmarket-[a-z0-9]+", tok):
                progs.add(tok)
                folder = tok[len("fedmarket-"):]
                if not os.access(os.path.join(BIN, tok), os.X_OK):
                    bad.append("%s runs %s: not in %s" % (name, tok, BIN))
                if not any(os.path.isdir(os.path.join(TOP, d, folder))
                           for d in ("services", "clients")):
                    bad.append("%s runs %s: no services/%s or clients/%s"
                               % (name, tok, folder, folder))
            elif tok.startswith("/usr/") and tok.count("/") > 2:
                local = map_image_path(st.pairs, tok)
                if not local or not os.path.exists(local):
                    bad.append("%s names %s: the Dockerfile puts nothing "
                               "there" % (name, tok))
                elif "/libexec/" in tok and not os.access(local, os.X_OK):
                    bad.append("%s runs %s: %s is not executable" %
                               (name, tok, local))
        prog = st.program(name)
        if not prog:
            bad.append("%s runs nothing" % name)
    for d in sorted(glob.glob(os.path.join(TOP, "services", "*", ""))):
        if os.path.basename(d.rstrip("/")) == "lib":
            continue  # services/lib is the services' library, not a program
        p = "fedmarket-" + os.path.basename(d.rstrip("/"))
        if p not in progs:
            bad.append("no container runs %s" % p)
    if os.path.isdir(os.path.join(TOP, "clients", "validatord")) and \
            "fedmarket-validatord" not in progs:
        bad.append("no container runs fedmarket-validatord")
    return bad


def cfg_default_port(st, key):
    for k in st.keys:
        if k["key"] == key:
            return int(k["default"].rsplit(":", 1)[1])
    return None


def check_ports(st):
    bad = []
    expose = set()
    for word, rest in st.df.stages[-1]["lines"]:
        if word == "EXPOSE":
            expose.update(int(x.split("/")[0]) for x in rest.split())
    readme = {r["container"]: r for r in (required_table() or [])}
    with open(README) as f:
        readme_text = f.read()
    for name in sorted(st.svcs):
        for port in sorted(st.published(name)):
            if not re.search(r"\b%d\b" % port, readme_text):
                bad.append("%s publishes port %d, which deploy/README.md "
                           "does not mention" % (name, port))
    for name in sorted(st.svcs):
        if not st.ours(name):
            continue
        prog = st.program(name) or ""
        if not prog.startswith("fedmarket-") or not os.path.isdir(
                os.path.join(TOP, "services", prog[len("fedmarket-"):])):
            continue
        key = st.listen_key(name)
        listen = st.env(name).get(env_name(key), "")
        m = re.fullmatch(r"0\.0\.0\.0:(\d+)", listen)
        if not m:
            bad.append("%s: %s is \"%s\", not 0.0.0.0:PORT" %
                       (name, env_name(key), listen))
            continue
        port = int(m.group(1))
        if port != cfg_default_port(st, key):
            bad.append("%s: port %d is not the code's default for %s (%s), "
                       "which clients assume" % (name, port, key,
                                                 cfg_default_port(st, key)))
        if port not in st.published(name):
            bad.append("%s: port %d is not published" % (name, port))
        if port not in expose:
            bad.append("%s: port %d is not in the Dockerfile's EXPOSE" %
                       (name, port))
        test = argv_of((st.svcs[name].get("healthcheck") or {}).get("test"))
        if "http://127.0.0.1:%d/healthz" % port not in test:
            bad.append("%s: the healthcheck does not GET /healthz on port "
                       "%d: %s" % (name, port, test))
        if readme.get(name, {}).get("port") != port:
            bad.append("%s: deploy/README.md gives port %s, the compose "
                       "file %d" % (name, readme.get(name, {}).get("port"),
                                    port))
    return bad


def url_parts(url):
    u = urllib.parse.urlsplit(url)
    return u.scheme, u.hostname, u.port, u.username, u.password, u.path


def check_links(st):
    """URLs naming other containers: right container, right port, same
    credentials on both ends"""
    bad = []
    svcs = st.svcs
    for name in sorted(svcs):
        if not st.ours(name):
            continue
        env = st.env(name)
        for var, val in sorted(env.items()):
            if not val:
                continue
            if var.endswith("_URL") and var not in (
                    "FEDMARKET_DATABASE_URL", "FEDMARKET_RPC_URL",
                    "FEDMARKET_STORAGE_URL"):
                _, host, port, _, _, _ = url_parts(val)
                if host not in svcs:
                    bad.append("%s: %s names %s, not a container" %
                               (name, var, host))
                elif st.listen_port(host) != port:
                    bad.append("%s: %s port %s, but %s listens on %s" % (
                        name, var, port, host, st.listen_port(host)))
                elif st.depends(name).get(host) != "service_healthy":
                    bad.append("%s: uses %s but does not wait for it to be "
                               "healthy" % (name, host))
        db = env.get("FEDMARKET_DATABASE_URL")
        if db:
            _, host, port, user, pw, path = url_parts(db)
            pg = st.env(host) if host in svcs else {}
            want = (pg.get("POSTGRES_USER"), pg.get("POSTGRES_PASSWORD"),
                    pg.get("POSTGRES_DB"))
            if host not in svcs or "postgres" not in svcs[host]["image"]:
                bad.append("%s: database host %s is not the postgres "
                           "container" % (name, host))
            elif (port or 5432) != 5432 or (user, pw, path[1:]) != want:
                bad.append("%s: database URL user/password/database/port do "
                           "not match the %s container's" % (name, host))
        rpc = env.get("FEDMARKET_RPC_URL")
        if rpc:
            _, host, port, _, _, _ = url_parts(rpc)
            args = argv_of(svcs.get(host, {}).get("command"))
            if host not in svcs or "--port" not in args or \
                    int(args[args.index("--port") + 1]) != port:
                bad.append("%s: RPC URL %s is not the anvil container's "
                           "port" % (name, rpc))
            elif "--chain-id" in args and args[args.index("--chain-id") +
                                              1] != env.get(
                    "FEDMARKET_CHAIN_ID", "31337"):
                bad.append("%s: FEDMARKET_CHAIN_ID is not anvil's chain id"
                           % name)
        s3 = env.get("FEDMARKET_S3_ENDPOINT")
        if s3:
            _, host, port, _, _, _ = url_parts(s3)
            mi = st.env(host) if host in svcs else {}
            if host not in svcs or port != 9000:
                bad.append("%s: S3 endpoint %s is not the minio container's "
                           "API port" % (name, s3))
            elif (env.get("FEDMARKET_S3_ACCESS_KEY"),
                  env.get("FEDMARKET_S3_SECRET_KEY")) != (
                    mi.get("MINIO_ROOT_USER"), mi.get("MINIO_ROOT_PASSWORD")):
                bad.append("%s: S3 keys are not minio's" % name)
        storage = env.get("FEDMARKET_STORAGE_URL", "")
        if storage.startswith("s3://"):
            bucket = storage[5:].split("/")[0]
            made = {st.env(n).get("FM_S3_BUCKET") for n in svcs}
            if bucket not in made:
                bad.append("%s: bucket %s is not the one minio-init makes "
                           "(%s)" % (name, bucket, made))
            if env_name("s3_endpoint") in env and "minio-init" in svcs and \
                    not st.waits_for(name, "minio-init",
                                     "service_completed_successfully"):
                bad.append("%s: uses the bucket before minio-init made it"
                           % name)
    return bad


def check_required(st):
    rows = required_table()
    if not rows:
        return ["deploy/README.md has no required-settings table"]
    bad = []
    seen = set()
    for r in rows:
        name = r["container"]
        seen.add(name)
        if name not in st.svcs:
            bad.append("README names container %s, the compose file has "
                       "none" % name)
            continue
        if st.program(name) != r["binary"]:
            bad.append("%s: README says it runs %s, the compose file %s" %
                       (name, r["binary"], st.program(name)))
        env = st.env(name)
        for key in r["keys"]:
            var = env_name(key)
            if key not in st.key_names:
                bad.append("%s: required %s is not in the configuration "
                           "table" % (name, key))
            elif var not in env:
                bad.append("%s: required %s is not set" % (name, var))
            elif env[var] == "":
                if var not in ENTRYPOINT_FILLS:
                    bad.append("%s: required %s is empty" % (name, var))
                elif "entrypoint" in st.svcs[name] or \
                        CHAIN_DIR not in st.volumes(name) or \
                        not st.waits_for(name, "chain-init",
                                         "service_completed_successfully"):
                    bad.append("%s: %s is empty and the entrypoint cannot "
                               "fill it (needs the chain volume at %s and "
                               "chain-init done)" % (name, var, CHAIN_DIR))
            if env.get(var, "").startswith("/run/secrets/"):
                sec = env[var][len("/run/secrets/"):]
                if sec not in st.secrets(name):
                    bad.append("%s: %s is secret %s, which it does not "
                               "mount" % (name, var, sec))
    for name in sorted(st.svcs):
        if st.ours(name) and name not in seen:
            bad.append("deploy/README.md's table lacks container %s" % name)
    return bad


def check_secrets(st):
    bad = []
    declared = st.doc.get("secrets") or {}
    holders = {}
    for name in sorted(st.svcs):
        for sec in st.secrets(name):
            holders.setdefault(sec, set()).add(name)
            if sec not in declared or "file" not in declared[sec]:
                bad.append("%s: secret %s is not declared with a file" %
                           (name, sec))
        for var, val in st.env(name).items():
            if val.startswith("/run/secrets/") and \
                    val[len("/run/secrets/"):] not in st.secrets(name):
                bad.append("%s: %s names an unmounted secret" % (name, var))
    want = {"operator_password": {"validationd"},
            "operator_keystore": {"validationd", "chain-init"}}
    for sec, who in want.items():
        if holders.get(sec, set()) != who:
            bad.append("secret %s reaches %s, it must reach exactly %s" % (
                sec, sorted(holders.get(sec, set())), sorted(who)))
    for name in st.svcs:
        env = st.env(name)
        if env.get("FEDMARKET_OPERATOR_PASSWORD"):
            bad.append("%s: a password in the environment" % name)
    return bad


def check_order(st):
    bad = []
    for name in sorted(st.svcs):
        dep = st.depends(name)
        for other in dep:
            if other not in st.svcs:
                bad.append("%s depends on unknown %s" % (name, other))
        if not st.ours(name):
            continue
        env = st.env(name)
        prog = st.program(name)
        if "FEDMARKET_DATABASE_URL" in env:
            host = url_parts(env["FEDMARKET_DATABASE_URL"])[1]
            if prog == "fedmarket-migrate":
                if dep.get(host) != "service_healthy":
                    bad.append("%s does not wait for %s to be healthy" %
                               (name, host))
            elif not st.waits_for(name, "migrate",
                                  "service_completed_successfully"):
                bad.append("%s does not wait for the migrations" % name)
        restart = st.svcs[name].get("restart")
        job = prog in ("fedmarket-migrate", "init-chain")
        if job and restart not in (None, "no"):
            bad.append("job %s restarts (%s)" % (name, restart))
        if not job and restart not in ("unless-stopped", "always",
                                       "on-failure"):
            bad.append("service %s does not restart" % name)
    return bad


def check_hardening(st):
    bad = []
    for name in sorted(st.svcs):
        if not st.ours(name):
            continue
        svc = st.svcs[name]
        tmpfs = svc.get("tmpfs") or []
        tmpfs = [tmpfs] if isinstance(tmpfs, str) else tmpfs
        if svc.get("read_only") is not True:
            bad.append("%s: the root file system is writable" % name)
        if not any(t.split(":")[0] == "/tmp" for t in tmpfs):
            bad.append("%s: no tmpfs at /tmp (the programs' TMPDIR)" % name)
        if "ALL" not in (svc.get("cap_drop") or []):
            bad.append("%s: keeps Linux capabilities" % name)
        if "no-new-privileges:true" not in (svc.get("security_opt") or []):
            bad.append("%s: may gain privileges (no-new-privileges)" % name)
    return bad


def check_versions(st):
    """the images run what the tests here ran"""
    bad = []
    with open(os.path.join(TOP, "package.json")) as f:
        npm = json.load(f)["dependencies"]
    pg = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                key=lambda p: int(p.split("/")[-2]))
    pg_major = pg[-1].split("/")[-2] if pg else None
    for name in sorted(st.svcs):
        image = st.svcs[name].get("image", "")
        repo, _, tag = image.rpartition(":")
        if repo.endswith("foundry-rs/foundry"):
            want = "v" + npm.get("@foundry-rs/anvil-linux-amd64", "?")
            if tag != want:
                bad.append("%s: image %s, but the tests run anvil %s "
                           "(package.json)" % (name, image, want))
        elif repo == "postgres" and tag.split("-")[0] != pg_major:
            bad.append("%s: image %s, but the tests run PostgreSQL %s" %
                       (name, image, pg_major))
        elif repo == "postgres" and not tag.endswith("-bookworm"):
            bad.append("%s: image %s is not the bookworm build" % (name,
                                                                   image))
        if ":" not in image or tag in ("", "latest") and not st.ours(name):
            bad.append("%s: image %s is not pinned to a version" % (name,
                                                                   image))
    return bad


def needed_packages():
    """Debian packages holding the libraries the binaries link"""
    libs = set()
    for b in glob.glob(os.path.join(BIN, "fedmarket-*")):
        out = subprocess.run(["objdump", "-p", b], capture_output=True,
                             text=True, check=True).stdout
        libs.update(re.findall(r"NEEDED\s+(\S+)", out))
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True,
                           text=True, check=True).stdout
    pkgs = {}
    for lib in sorted(libs):
        m = re.search(r"^\s*%s \(.*\) => (\S+)$" % re.escape(lib), cache,
                      re.M)
        path = m.group(1) if m else None
        pkg = None
        for cand in filter(None, [path, path and os.path.realpath(path),
                                  path and path.replace("/lib/", "/usr/lib/",
                                                        1)]):
            r = subprocess.run(["dpkg", "-S", cand], capture_output=True,
                               text=True)
            if r.returncode == 0:
                pkg = r.stdout.split(":")[0]
                break
        pkgs[lib] = pkg
    return pkgs


def check_dockerfile(st):
    bad = []
    df = st.df
    if len(df.stages) < 2:
        return ["the Dockerfile has %d stage(s), not a build and a runtime "
                "stage" % len(df.stages)]
    build, run = df.stages[0], df.stages[-1]
    if not build["name"] or not re.fullmatch(r"debian:bookworm",
                                             build["from"]):
        bad.append("build stage is %s (%s), not a named debian:bookworm" %
                   (build["from"], build["name"]))
    if run["from"] != "debian:bookworm-slim":
        bad.append("runtime stage is %s, not debian:bookworm-slim" %
                   run["from"])
    user = df.last(run, "USER") or "root"
    if not re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", user):
        bad.append("runtime USER is %s, not a numeric non-root uid" % user)
    runtime = df.apt_packages(run)
    with open("/etc/os-release") as f:
        here = re.search(r"^VERSION_CODENAME=(\S+)", f.read(), re.M)
    here = here.group(1) if here else "?"
    if df.args.get("DEBIAN_RELEASE") != here:
        bad.append("the image is Debian %s, the build and tests here %s" %
                   (df.args.get("DEBIAN_RELEASE"), here))
    for pkg in sorted(runtime | df.apt_packages(build)):
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", pkg],
                           capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout.strip():
            bad.append("apt package %s: not in Debian %s" % (pkg, here))
    for lib, pkg in needed_packages().items():
        if re.match(r"lib(asan|ubsan)\.", lib):
            continue  # the sanitizers' runtime: only in SAN=1 builds
        if pkg is None:
            bad.append("%s: no Debian package found for it" % lib)
        elif pkg not in runtime and pkg != "libc6":
            bad.append("the binaries link %s (package %s), not installed in "
                       "the runtime stage" % (lib, pkg))
    if any(p.endswith("-dev") for p in runtime):
        bad.append("the runtime stage installs -dev packages")
    with open(os.path.join(TOP, "deploy", "local", "install-deps")) as f:
        text = f.read()
    m = re.search(r"APT_PKGS=\((.*?)\)", text, re.S)
    dev = {p for p in m.group(1).split() if p.endswith("-dev")} if m else {}
    for p in sorted(dev - df.apt_packages(build) - {"libcmocka-dev"}):
        bad.append("build stage lacks %s (deploy/local/install-deps has it)"
                   % p)
    sources = []
    for stage in df.stages:
        for srcs, _, from_stage in df.copies(stage):
            if from_stage:
                continue
            for s in srcs:
                sources.append(s)
                if not os.path.exists(os.path.join(TOP, s)):
                    bad.append("COPY %s: no such file in the checkout" % s)
                elif not dockerignore_allows(s.rstrip("/")):
                    bad.append("COPY %s: excluded by .dockerignore" % s)
    # every checkout file the build of the library and programs read
    used = set()
    for d in glob.glob(os.path.join(BUILD, "obj", "**", "*.d"),
                       recursive=True):
        rel = os.path.relpath(d, os.path.join(BUILD, "obj"))
        if rel.startswith("tests"):
            continue
        with open(d) as f:
            for tok in re.split(r"[\s\\:]+", f.read()):
                if tok and not tok.startswith("/") and \
                        not tok.startswith("build"):
                    used.add(os.path.normpath(tok))
    if not used:
        bad.append("no dependency files under %s/obj" % BUILD)
    for u in sorted(used):
        inside = any(u == s.rstrip("/") or u.startswith(s.rstrip("/") + "/")
                     for s in sources)
        if not inside:
            bad.append("the build reads %s, which the Dockerfile does not "
                       "copy" % u)
        elif not dockerignore_allows(u):
            bad.append("the build reads %s, excluded by .dockerignore" % u)
    for bad_path in ("var/x", "build/x", "node_modules/x", "deploy/secrets/x",
                     "bin/fedmarket-taskd", "common/core/x.o"):
        if dockerignore_allows(bad_path):
            bad.append(".dockerignore lets %s into the build context" %
                       bad_path)
    return bad


CHECKS = [
    ("every FEDMARKET_* variable deploy/ names is in the configuration "
     "table", check_names),
    ("every variable the compose file takes from the shell is documented",
     check_overrides),
    ("every container's environment loads in fedmarket's configuration "
     "(fedmarket-admin config)", check_env_loads),
    ("every program the compose file runs is built (bin/) or copied into "
     "the image; every service has a container", check_programs),
    ("each service listens on 0.0.0.0 at the code's default port, "
     "published, exposed, health-checked; every published port is "
     "documented", check_ports),
    ("URLs between containers name the right container, port and "
     "credentials", check_links),
    ("each container sets every setting its program requires "
     "(deploy/README.md table)", check_required),
    ("secrets: declared, mounted where named; the payout password reaches "
     "validationd alone", check_secrets),
    ("hardening: read-only root, /tmp in memory, no capabilities, no new "
     "privileges", check_hardening),
    ("images: pinned, and the anvil and PostgreSQL the tests run",
     check_versions),
    ("start order: migrations after PostgreSQL, services after "
     "migrations; jobs run once, services restart", check_order),
    ("Dockerfile: bookworm build stage, slim runtime with every linked "
     "library, non-root, complete context", check_dockerfile),
]


def static(rendered, keys_path, only=None):
    with open(keys_path) as f:
        keys = json.load(f)
    st = Stack(load_rendered(rendered), keys)
    for desc, fn in CHECKS:
        if only and not desc.startswith(only):
            continue
        try:
            bad = fn(st)
        except Exception as e:  # a crash of a check is its failure
            bad = ["check crashed: %r" % e]
        print(("ok - " if not bad else "not ok - ") + desc)
        for b in bad:
            print("#   " + b)


# ---- running a container here --------------------------------------------

def native(rendered, name):
    """argv and environment to run container name on this machine"""
    with open(os.environ["FM_N_KEYS"]) as f:
        keys = json.load(f)
    st = Stack(load_rendered(rendered), keys)
    root = os.environ["FM_N_ROOT"]
    base = int(os.environ["FM_N_PORT_BASE"])
    declared = st.doc.get("secrets") or {}

    def port(p):
        return base + (p - 54390)

    def path(v):
        if v.startswith("/run/secrets/"):
            sec = v[len("/run/secrets/"):]
            return os.path.join(root, "secrets",
                                os.path.basename(declared[sec]["file"]))
        for target, vol in st.volumes(name).items():
            if v == target or v.startswith(target + "/"):
                return os.path.join(root, "volumes", vol) + v[len(target):]
        local = map_image_path(st.pairs, v)
        return local if local else v

    # HOME stands for the image's read-only /var/lib/fedmarket: the test
    # checks nothing was written there; TMPDIR for the tmpfs at /tmp
    env = {"PATH": BIN + ":/usr/bin:/bin",
           "HOME": os.path.join(root, "home", name),
           "TMPDIR": os.path.join(root, "tmp", name)}
    os.makedirs(env["HOME"], exist_ok=True)
    os.makedirs(env["TMPDIR"], exist_ok=True)
    for target, vol in st.volumes(name).items():
        os.makedirs(os.path.join(root, "volumes", vol), exist_ok=True)
    for var, val in st.env(name).items():
        if var == "FEDMARKET_DATABASE_URL":
            val = os.environ["FM_N_DB"]
        elif var == "FEDMARKET_RPC_URL":
            val = os.environ["FM_N_RPC"]
        elif var == "FEDMARKET_S3_ENDPOINT":
            val = os.environ["FM_N_S3"]
        elif var == "FEDMARKET_S3_ACCESS_KEY":
            val = os.environ["FM_N_S3_KEY"]
        elif var == "FEDMARKET_S3_SECRET_KEY":
            val = os.environ["FM_N_S3_SECRET"]
        elif var.endswith("_LISTEN"):
            val = "127.0.0.1:%d" % port(int(val.rsplit(":", 1)[1]))
        elif var.endswith("_URL") and val.startswith("http://"):
            _, host, p, _, _, _ = url_parts(val)
            if host in st.svcs:
                val = "http://127.0.0.1:%d" % port(p)
        elif val.startswith("/"):
            val = path(val)
        env[var] = val
    if CHAIN_DIR in st.volumes(name):
        env["FM_CHAIN_ENV"] = path(CHAIN_DIR + "/chain.env")
    argv = []
    for tok in st.argv(name):
        if tok.startswith("/"):
            tok = path(tok)
        argv.append(tok)
    return argv, env


def main():
    if len(sys.argv) in (4, 5) and sys.argv[1] == "static":
        static(*sys.argv[2:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "exec":
        argv, env = native(sys.argv[2], sys.argv[3])
        argv += sys.argv[4:]
        prog = argv[0] if "/" in argv[0] else os.path.join(BIN, argv[0])
        os.execve(prog, argv, env)
    elif len(sys.argv) == 4 and sys.argv[1] == "health":
        # the container's healthcheck command, its port mapped here
        st = Stack(load_rendered(sys.argv[2]), [])
        base = int(os.environ["FM_N_PORT_BASE"])
        test = argv_of((st.svcs[sys.argv[3]].get("healthcheck") or
                        {}).get("test"))
        for tok in test[1:] if test[:1] == ["CMD"] else []:
            print(re.sub(r"^http://127\.0\.0\.1:(\d+)",
                         lambda m: "http://127.0.0.1:%d" %
                         (base + int(m.group(1)) - 54390), tok))
    elif len(sys.argv) == 4 and sys.argv[1] == "print":
        argv, env = native(sys.argv[2], sys.argv[3])
        print(json.dumps({"argv": argv, "env": env}, indent=1))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
