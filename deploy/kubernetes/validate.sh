#!/usr/bin/env bash
# Validates the Kubernetes manifests in this directory, offline:
#   1. renders the three ways of running roster (daemon/, cronjob/, ha/) with the kustomize
#      (resources lists only, rendered by a few lines of Python below), so the kustomizations themselves are checked;
#   2. validates every rendered object and secret.example.yaml against the Kubernetes
#      OpenAPI schemas bundled in the PyPI package kubernetes-validate, in strict mode
#      (unknown fields are errors), for the oldest and newest versions listed below; an
#      object whose apiVersion/kind has no schema is an error too. The monitoring/
#      overlay (a PrometheusRule, a custom resource) is validated the same way against
#      the CRD schema in schemas/ (jsonschema, strict);
#   3. cross-checks what the schemas cannot know (every manifest is in a kustomization,
#      config paths match the mounts, probes and scrape port match the listen address,
#      grace period above shutdown_grace_secs, one replica, Forbid, separate stores,
#      hardened pods, the PrometheusRule's groups equal to deploy/prometheus/roster-rules.yaml;
#      for ha/: two replicas, [ha], anti-affinity, a PodDisruptionBudget, and a Role
#      allowing exactly get/update/patch on that Lease plus create);
#   4. if a roster binary is available, runs `roster plan` on each ConfigMap's roster.toml
#      (paths moved into a scratch dir, example secrets) so roster's own config loader
#      accepts it. `plan` pushes and writes nothing and needs no network.
#
# Usage: deploy/kubernetes/validate.sh [ROSTER_BINARY]
#   ROSTER_BINARY defaults to target/debug/roster or target/release/roster when built;
#   without one, step 4 is skipped (said in the output).
# Needs python3 (3.11+) with pip. The tools (pinned below) are installed once into a venv
# under ${TMPDIR:-/tmp} and reused on later runs; nothing is installed system-wide.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

requirements=(kubernetes-validate==1.37.0 jsonschema==4.26.0)
k8s_versions=(1.29.0 1.37.0)
overlays=(daemon cronjob ha)
# Overlays of custom resources, validated against the CRDs in schemas/.
crd_overlays=(monitoring)

# ---- tools -------------------------------------------------------------------------
venv="${TMPDIR:-/tmp}/roster-deploy-k8s-$(printf '%s\n' "${requirements[@]}" "$(command -v python3)" | cksum | cut -d' ' -f1)"
if [ ! -f "$venv/ok" ]; then
  echo "== installing ${requirements[*]} into $venv"
  rm -rf "$venv"
  if python3 -m venv "$venv" >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
    printf '#!/bin/sh\nexec "%s/bin/python" "$@"\n' "$venv" > "$venv/python"
  else
    # No venv module (Debian without python3-venv): install into a plain directory.
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$venv/lib" "${requirements[@]}"
    mkdir -p "$venv/bin"
    printf '#!/bin/sh\nPYTHONPATH="%s/lib" exec python3 "$@"\n' "$venv" > "$venv/python"
    printf '#!/bin/sh\nPYTHONPATH="%s/lib" exec python3 -m kubernetes_validate "$@"\n' "$venv" \
      > "$venv/bin/kubernetes-validate"
  fi
  chmod +x "$venv/python" "$venv/bin/kubernetes-validate" 2>/dev/null || true
  "$venv/bin/kubernetes-validate" --version >/dev/null
  touch "$venv/ok"
fi
python="$venv/python"
kvalidate="$venv/bin/kubernetes-validate"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# ---- 1. render ---------------------------------------------------------------------
# Our kustomizations only list `resources`, so they are rendered here rather than with a
# kubectl binary from a third-party package; any other kustomize feature is refused, so
# this check cannot silently render something different from `kubectl apply -k`.
echo "== render kustomizations (resources only)"
for overlay in "${overlays[@]}" "${crd_overlays[@]}"; do
  if "$python" - "$here/$overlay" > "$work/$overlay.yaml" <<'PY'
import pathlib, sys
import yaml

def render(directory, seen):
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    extra = set(k) - {"apiVersion", "kind", "resources"}
    if extra:
        sys.exit(f"{directory}: kustomize features this check cannot render: {sorted(extra)}")
    docs = []
    for r in k.get("resources", []):
        p = (directory / r).resolve()
        if p in seen:
            sys.exit(f"{directory}: resource {r} included twice")
        seen.add(p)
        if p.is_dir():
            docs += render(p, seen)
        else:
            docs += [d for d in yaml.safe_load_all(p.read_text()) if d]
    return docs

print(yaml.safe_dump_all(render(pathlib.Path(sys.argv[1]), set()), sort_keys=False), end="")
PY
  then
    echo "ok: $overlay: $(grep -c '^kind:' "$work/$overlay.yaml") objects ($(grep '^kind:' "$work/$overlay.yaml" | cut -d' ' -f2 | paste -sd' '))"
  else
    fail "render $overlay"
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "validate.sh: FAILED"
  exit 1
fi

# ---- 2. schemas --------------------------------------------------------------------
cp "$here/secret.example.yaml" "$work/secret.example.yaml"
for version in "${k8s_versions[@]}"; do
  echo "== kubernetes-validate --strict, Kubernetes $version"
  set +e
  out=$(cd "$work" && "$kvalidate" --strict -k "$version" "${overlays[@]/%/.yaml}" secret.example.yaml 2>&1)
  status=$?
  set -e
  printf '%s\n' "$out" | grep -v ' passed for resource ' || true
  # A missing schema (wrong apiVersion or kind) is only a warning there, with status 0.
  if [ "$status" -ne 0 ] || printf '%s\n' "$out" | grep -Eq '^(WARN|ERROR)'; then
    fail "schema validation against Kubernetes $version"
  else
    echo "ok: $(printf '%s\n' "$out" | grep -c ' passed for resource ') objects valid"
  fi
done

echo "== custom resources against schemas/ (strict)"
crd_rendered=()
for overlay in "${crd_overlays[@]}"; do crd_rendered+=("$work/$overlay.yaml"); done
if "$python" - "$here/schemas" "${crd_rendered[@]}" <<'PY'
import pathlib, re, sys
import jsonschema, yaml

schemas = {}
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.yaml")):
    for crd in yaml.safe_load_all(f.read_text()):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for v in spec["versions"]:
            schemas[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = v["schema"]["openAPIV3Schema"]

def strict(node):
    # As kubernetes-validate --strict: an object with listed properties takes no others.
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node \
                and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
    return node

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
failed = 0
for rendered in sys.argv[2:]:
    for obj in yaml.safe_load_all(open(rendered)):
        if not obj:
            continue
        what = f"{pathlib.Path(rendered).stem}: {obj.get('kind')} {obj.get('metadata', {}).get('name')}"
        schema = schemas.get((obj.get("apiVersion"), obj.get("kind")))
        if schema is None:
            print(f"ERROR {what}: no schema for {obj.get('apiVersion')} {obj.get('kind')}")
            failed += 1
            continue
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in jsonschema.Draft7Validator(strict(schema)).iter_errors(obj)]
        # The CRD leaves metadata to the API server: the ObjectMeta rules that matter here.
        meta = obj.get("metadata", {})
        if set(meta) - {"name", "labels", "annotations"}:
            errors.append(f"metadata: unexpected keys {sorted(set(meta) - {'name', 'labels', 'annotations'})}")
        if not (isinstance(meta.get("name"), str) and len(meta["name"]) <= 253 and NAME.match(meta["name"])):
            errors.append("metadata/name: not a DNS subdomain name")
        for key in ("labels", "annotations"):
            m = meta.get(key, {})
            if not (isinstance(m, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in m.items())):
                errors.append(f"metadata/{key}: must map strings to strings")
        for e in errors:
            print(f"ERROR {what}: {e}")
        failed += len(errors)
        if not errors:
            print(f"ok: {what} valid")
sys.exit(1 if failed else 0)
PY
then :; else fail "custom resources against their CRD schemas"; fi

# ---- 3. cross-checks ---------------------------------------------------------------
echo "== cross-checks"
"$python" - "$here" "$work" <<'PY' || failed=1
import pathlib, sys, tomllib
import yaml

here, work = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

def load(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]

# Every manifest is used by a kustomization (the example Secret, on purpose, is not).
listed = set()
for k in here.rglob("kustomization.yaml"):
    for r in yaml.safe_load(k.read_text()).get("resources", []):
        p = (k.parent / r).resolve()
        check(p.exists(), f"{k.relative_to(here)}: resource {r} does not exist")
        listed.add(p / "kustomization.yaml" if p.is_dir() else p)
for f in here.rglob("*.yaml"):
    if f.name not in ("secret.example.yaml", "kustomization.yaml") and f.parent.name != "schemas" \
            and f.resolve() not in listed:
        errors.append(f"{f.relative_to(here)} is not in any kustomization.yaml")

# The PrometheusRule carries exactly the rules promtool checks and tests (deploy/check.sh).
rules = yaml.safe_load((here.parent / "prometheus" / "roster-rules.yaml").read_text())
(prom_rule,) = [o for o in load(work / "monitoring.yaml") if o["kind"] == "PrometheusRule"]
check(prom_rule["spec"]["groups"] == rules["groups"],
      "monitoring/prometheusrule.yaml: spec.groups differ from deploy/prometheus/roster-rules.yaml")

secret = load(here / "secret.example.yaml")[0]
secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
for key, value in secret.get("stringData", {}).items():
    check("PLACEHOLDER" in value, f"secret.example.yaml: {key} is not a PLACEHOLDER value")

CREDENTIALS = {"api_key", "token", "password", "auth_token", "user_id", "instance_key", "trigger_token"}

def walk(table, prefix=""):
    for k, v in table.items():
        if isinstance(v, dict):
            yield from walk(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", k, v

def check_ha(name, by_kind, pod, spec, config):
    """Leader election on a Lease: what the schemas cannot know."""
    ha = config.get("ha")
    check(isinstance(ha, dict) and ha.get("lease"), f"{name}: roster.toml needs an [ha] table with lease")
    if not isinstance(ha, dict):
        return
    lease = ha.get("lease")
    check(ha.get("renew_deadline_secs", 10) < ha.get("lease_duration_secs", 15),
          f"{name}: ha.renew_deadline_secs must be below ha.lease_duration_secs")
    labels = pod["metadata"]["labels"]
    selects = lambda sel: bool(sel) and all(labels.get(k) == v for k, v in sel.items())
    anti = spec.get("affinity", {}).get("podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])
    check(any(t.get("topologyKey") == "kubernetes.io/hostname" and selects(t.get("labelSelector", {}).get("matchLabels"))
              for t in anti), f"{name}: the replicas need required pod anti-affinity on kubernetes.io/hostname")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    check(any(selects(p["spec"].get("selector", {}).get("matchLabels")) and
              (p["spec"].get("maxUnavailable") == 1 or p["spec"].get("minAvailable") == 1) for p in pdbs),
          f"{name}: a PodDisruptionBudget must keep one replica up")
    sa = spec.get("serviceAccountName")
    sas = {o["metadata"]["name"]: o for o in by_kind.get("ServiceAccount", [])}
    check(sa in sas, f"{name}: serviceAccountName {sa} is not a ServiceAccount of the overlay")
    check(spec.get("automountServiceAccountToken", sas.get(sa, {}).get("automountServiceAccountToken", True)) is True,
          f"{name}: the pods need their service account token (in-cluster Kubernetes client)")
    roles = {o["metadata"]["name"]: o for o in by_kind.get("Role", [])}
    bound = [b["roleRef"]["name"] for b in by_kind.get("RoleBinding", [])
             if b["roleRef"]["kind"] == "Role" and any(s.get("kind") == "ServiceAccount" and s.get("name") == sa
                                                        for s in b.get("subjects", []))]
    check(len(bound) == 1 and bound[0] in roles, f"{name}: exactly one Role must be bound to {sa}")
    check(not by_kind.get("ClusterRole") and not by_kind.get("ClusterRoleBinding"), f"{name}: no cluster-wide rights")
    if len(bound) == 1 and bound[0] in roles:
        rules = sorted((tuple(r.get("apiGroups", [])), tuple(r.get("resources", [])), tuple(r.get("resourceNames", [])),
                        tuple(sorted(r.get("verbs", [])))) for r in roles[bound[0]]["rules"])
        want = sorted([(("coordination.k8s.io",), ("leases",), (lease,), ("get", "patch", "update")),
                       # create cannot be limited by resourceNames (see rbac.yaml)
                       (("coordination.k8s.io",), ("leases",), (), ("create",))])
        check(rules == want, f"{name}: the Role must allow exactly get/update/patch on Lease {lease} and create "
                             f"on leases, got {rules}")

for overlay, kind in (("daemon", "StatefulSet"), ("cronjob", "CronJob"), ("ha", "StatefulSet")):
    objs = load(work / f"{overlay}.yaml")
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    configmaps = {o["metadata"]["name"]: o for o in by_kind.get("ConfigMap", [])}
    workload = by_kind[kind][0]
    if kind == "StatefulSet":
        pod = workload["spec"]["template"]
        if overlay == "ha":
            check(workload["spec"]["replicas"] == 2, f"{overlay}: replicas must be 2 (a leader and a standby)")
        else:
            check(workload["spec"]["replicas"] == 1, "StatefulSet: replicas must be 1 (sled locks the store)")
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    else:
        pod = workload["spec"]["jobTemplate"]["spec"]["template"]
        check(workload["spec"].get("concurrencyPolicy") == "Forbid", "CronJob: concurrencyPolicy must be Forbid")
        claims = set()
    spec = pod["spec"]
    name = f"{overlay}/{kind}"
    (c,) = spec["containers"]
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for vol in mounts.values():
        check(vol in volumes or vol in claims, f"{name}: volumeMount {vol} has no volume")

    # The config file: ROSTER_CONFIG -> a mounted ConfigMap key that parses as TOML.
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    cfg_path = pathlib.PurePosixPath(env.get("ROSTER_CONFIG", ""))
    cfg_vol = volumes.get(mounts.get(str(cfg_path.parent), ""), {})
    cm = configmaps.get(cfg_vol.get("configMap", {}).get("name"))
    check(cm is not None, f"{name}: ROSTER_CONFIG={cfg_path} is not a file of a ConfigMap in the overlay")
    if cm is None:
        continue
    config = tomllib.loads(cm["data"][cfg_path.name])
    grace = config.get("shutdown_grace_secs", 30)
    check(spec.get("terminationGracePeriodSeconds", 30) > grace,
          f"{name}: terminationGracePeriodSeconds must exceed shutdown_grace_secs ({grace})")
    if overlay == "ha":
        check_ha(overlay, by_kind, pod, spec, config)
    state_dir = config.get("state_dir", "/var/lib/roster")
    state_vol = mounts.get(state_dir)
    check(state_vol is not None, f"{name}: state_dir {state_dir} is not a mounted volume")
    if kind == "StatefulSet":
        check(state_vol in claims, f"{name}: state_dir must be on a volumeClaimTemplate")
    else:
        pvc = volumes.get(state_vol, {}).get("persistentVolumeClaim", {}).get("claimName")
        pvcs = {o["metadata"]["name"] for o in by_kind.get("PersistentVolumeClaim", [])}
        check(pvc in pvcs, f"{name}: state_dir must be on the overlay's own PersistentVolumeClaim")
        check(pvc is None or not pvc.startswith("state-roster-"), f"{name}: must not use the StatefulSet's volume")

    def mounted(path, what):
        p = pathlib.PurePosixPath(path)
        vol = mounts.get(str(p.parent))
        check(vol is not None, f"{name}: {what} {path} is not in a mounted volume")
        return volumes.get(vol, {})

    for dotted, key, value in walk(config):
        check(key not in CREDENTIALS, f"{name}: roster.toml gives {dotted} inline; use {key}_file and the Secret")
        if key.endswith("_file"):
            vol = mounted(value, dotted)
            if "secret" in vol:
                check(pathlib.PurePosixPath(value).name in secret_keys,
                      f"{name}: {dotted} = {value} is not a key of secret.example.yaml")
            else:
                errors.append(f"{name}: {dotted} = {value} is not in the Secret volume")
    source = config.get("source", {}).get("path", "")
    vol = mounted(source, "source.path")
    src_cm = configmaps.get(vol.get("configMap", {}).get("name"))
    if src_cm is not None:
        check(pathlib.PurePosixPath(source).name in src_cm.get("data", {}),
              f"{name}: source.path {source} is not a key of ConfigMap {src_cm['metadata']['name']}")

    # Hardening.
    psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
    check(psc.get("runAsNonRoot") or csc.get("runAsNonRoot"), f"{name}: runAsNonRoot")
    check((psc.get("seccompProfile") or csc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
          f"{name}: seccompProfile RuntimeDefault")
    check(csc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation false")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities drop ALL")
    check("limits" in c.get("resources", {}) and "requests" in c.get("resources", {}), f"{name}: resources")

    if kind == "StatefulSet":
        listen = env.get("ROSTER__SERVER__LISTEN") or config.get("server", {}).get("listen", "127.0.0.1:9464")
        host, _, port = listen.rpartition(":")
        check(host in ("0.0.0.0", "[::]"), f"{name}: server.listen {listen} is not reachable from the kubelet")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            get = c.get(probe, {}).get("httpGet")
            if probe != "startupProbe" or get:
                check(get and get.get("path") == path, f"{name}: {probe} must GET {path}")
                p = get and get.get("port")
                check(ports.get(p, p) == int(port), f"{name}: {probe} port is not the listen port {port}")
        ann = pod["metadata"].get("annotations", {})
        check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == port
              and ann.get("prometheus.io/path") == "/metrics", f"{name}: prometheus.io annotations")
        svc = by_kind["Service"][0]
        check(workload["spec"]["serviceName"] == svc["metadata"]["name"], f"{name}: serviceName is not the Service")
        sel = svc["spec"]["selector"]
        check(all(pod["metadata"]["labels"].get(k) == v for k, v in sel.items()), f"{name}: Service selects no pod")
        check(any(ports.get(p["targetPort"], p["targetPort"]) == int(port) for p in svc["spec"]["ports"]),
              f"{name}: Service does not target the listen port")

for e in errors:
    print("FAIL:", e)
print("ok: cross-checks" if not errors else f"{len(errors)} cross-check(s) failed")
sys.exit(1 if errors else 0)
PY

# ---- 4. roster's own config loader ----------------------------------------------------
bin=${1:-}
if [ -z "$bin" ]; then
  for candidate in "$repo/target/debug/roster" "$repo/target/release/roster"; do
    if [ -x "$candidate" ]; then bin=$candidate; break; fi
  done
fi
echo "== roster plan on each ConfigMap's roster.toml"
if [ -z "$bin" ]; then
  echo "skipped: no roster binary (build it, or pass its path)"
else
  for overlay in daemon ha; do
  "$python" - "$work/$overlay.yaml" "$here/secret.example.yaml" "$work/cfg-$overlay" <<'PY'
import pathlib, sys, yaml
rendered, secret, out = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(open(rendered)) if d and d["kind"] == "ConfigMap"}
moves = {"/run/secrets/roster/": out / "secrets", "/srv/roster-source/": out / "source", "/var/lib/roster": out / "state"}
toml = docs["roster-config"]["data"]["roster.toml"]
for old, new in moves.items():
    new.mkdir(parents=True, exist_ok=True)
    toml = toml.replace(old, str(new) + ("/" if old.endswith("/") else ""))
(out / "roster.toml").write_text(toml)
for name, text in docs["roster-source"]["data"].items():
    (out / "source" / name).write_text(text)
for name, text in yaml.safe_load(open(secret))["stringData"].items():
    (out / "secrets" / name).write_text(text + "\n")
PY
  set +e
  # HOSTNAME as in a pod: the default [ha] identity.
  out=$(env -u ROSTER_CONFIG HOSTNAME=roster-0 ROSTER__LOG_FORMAT=text "$bin" --config "$work/cfg-$overlay/roster.toml" plan 2>&1)
  status=$?
  set -e
  printf '%s\n' "$out" | sed 's/^/  /'
  if [ "$status" -ne 0 ]; then
    fail "roster plan exited $status on the $overlay ConfigMap's roster.toml ($bin)"
  else
    echo "ok: roster ($bin) accepts the $overlay ConfigMap's roster.toml"
  fi
  done
fi

if [ "$failed" -ne 0 ]; then
  echo "validate.sh: FAILED"
  exit 1
fi
echo "validate.sh: all checks passed"
