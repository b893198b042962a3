"""Issue 14 on the cluster rung: service volumes, accessories, buckets, app jobs, egress, their backups.

Runs the production stack's `extras` variant (two tenants) under mocks and checks the
rendered objects, the NetworkPolicy reachability model and the ResourceQuota model.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.render import k8s as r
from components.render import k8s_extras as x
from tests.cluster_helpers import manifests, pod_spec, production
from tests.test_cluster_models import CONTROLLERS, DNS, OBJECT_STORE, OUTSIDER, PROMETHEUS, in_namespace, network
from tools.harness import is_secret, unwrap
from tools.netpol_model import External, Pod, workload_pods
from tools.quota_model import admission_errors, demand

NAMESPACES = ("shop-acme", "shop-globex")
ACCESSORY_PORTS = {"mongo": 27017, "search": 7700}


def named(kind: str, name: str, namespace: str) -> dict[str, Any]:
    found = [
        m
        for m in manifests(production("extras"), kind)
        if m["metadata"]["name"] == name and m["metadata"].get("namespace") == namespace
    ]
    assert len(found) == 1, (kind, name, namespace)
    return found[0]


def pods(namespace: str) -> dict[str, Pod]:
    return {p.name: p for p in workload_pods(in_namespace(production("extras"), namespace))}


# --- objects ------------------------------------------------------------------------------


def test_service_with_a_volume_is_one_replica_recreate_with_its_claim() -> None:
    for ns in NAMESPACES:
        d = named("Deployment", "files", ns)
        assert d["spec"]["strategy"] == {"type": "Recreate"} and d["spec"]["replicas"] == 1
        claims = [v for v in pod_spec(d)["volumes"] if "persistentVolumeClaim" in v]
        assert claims == [{"name": "data-uploads", "persistentVolumeClaim": {"claimName": "files-data-uploads"}}]
        mounts = pod_spec(d)["containers"][0]["volumeMounts"]
        assert {"name": "data-uploads", "mountPath": "/data/uploads"} in mounts
        pvc = named("PersistentVolumeClaim", "files-data-uploads", ns)
        assert pvc["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}
        # everything else still rolls
        assert named("Deployment", "web", ns)["spec"]["strategy"]["type"] == "RollingUpdate"


def test_accessories_are_restricted_statefulsets_with_their_secret() -> None:
    result = production("extras")
    for ns in NAMESPACES:
        sts = named("StatefulSet", "mongo", ns)
        spec = pod_spec(sts)
        c = spec["containers"][0]
        assert sts["spec"]["replicas"] == 1 and sts["spec"]["serviceName"] == "mongo"
        assert spec["securityContext"]["runAsNonRoot"] and c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert c["envFrom"] == [{"secretRef": {"name": "accessory-mongo"}}]
        assert "mongo-secret-value" not in str(sts)
        assert c["readinessProbe"]["exec"]["command"][0] == "mongosh"
        assert named("StatefulSet", "search", ns)["spec"]["template"]["spec"]["containers"][0]["readinessProbe"][
            "tcpSocket"
        ] == {"port": "main"}
        assert named("Service", "mongo", ns)["spec"]["type"] == "ClusterIP"
    secrets = [
        reg
        for reg in result.of_type("kubernetes:core/v1:Secret")
        if unwrap(reg.inputs["metadata"])["name"] == "accessory-mongo"
    ]
    assert len(secrets) == 2
    for reg in secrets:
        assert is_secret(reg.inputs["stringData"])
        assert unwrap(reg.inputs["stringData"]) == {"MONGO_INITDB_ROOT_PASSWORD": "mongo-secret-value"}
    stateful = [
        reg
        for reg in result.resources
        if reg.type in ("kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:PersistentVolumeClaim")
    ]
    assert stateful and all(reg.protect for reg in stateful)


def test_app_job_is_a_forbid_cronjob_with_the_app_env() -> None:
    for ns in NAMESPACES:
        cj = named("CronJob", "job-cleanup", ns)["spec"]
        assert cj["concurrencyPolicy"] == "Forbid" and cj["schedule"] == "30 3 * * *" and cj["timeZone"] == "Etc/UTC"
        job = cj["jobTemplate"]["spec"]
        assert job["activeDeadlineSeconds"] == 600 and job["backoffLimit"] == 0
        pod = job["template"]["spec"]
        c = pod["containers"][0]
        assert pod["restartPolicy"] == "Never" and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert c["command"] == ["node", "-e", "console.log(1)"] and c["image"] == "mendhak/http-https-echo:37"
        assert c["envFrom"] == [{"configMapRef": {"name": r.APP_CONFIG}}, {"secretRef": {"name": r.APP_SECRET}}]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_backups_tar_volumes_and_dump_accessories_on_the_backup_schedule() -> None:
    for ns in NAMESPACES:
        files = named("CronJob", "backup-files", ns)["spec"]
        assert files["schedule"] == "0 */6 * * *" and files["concurrencyPolicy"] == "Forbid"
        pod = files["jobTemplate"]["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        assert init["command"][:3] == ["tar", "czf", "/backup/archive"] and "data/uploads" in init["command"]
        assert all(m.get("readOnly") for m in init["volumeMounts"] if m["name"] != "backup")
        affinity = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert affinity["labelSelector"]["matchLabels"] == {r.NAME: "files", r.INSTANCE: ns.split("-")[1]}
        upload = pod["containers"][0]
        env = {e["name"]: e["value"] for e in upload["env"]}
        assert env["RCLONE_CONFIG_SEALED_REMOTE"] == "BACKUP:shop-backups"
        assert env["PREFIX"] == f"production/{ns}/volumes/files"
        assert env["RCLONE_CONFIG_BACKUP_ENDPOINT"] == "https://fra1.digitaloceanspaces.com"
        assert env["RCLONE_CONFIG_BACKUP_PROVIDER"] == "DigitalOcean"
        assert upload["envFrom"] == [{"secretRef": {"name": x.BACKUP_CREDENTIALS}}]
        mongo = named("CronJob", "backup-mongo", ns)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        dump = mongo["initContainers"][0]
        assert dump["image"] == "mongo:8.0.4" and dump["command"][:3] == ["sh", "-c", x.DUMP_SCRIPT]
        assert {"name": "MONGO_HOST", "value": f"mongo.{ns}.svc.cluster.local"} in dump["env"]
        search = named("CronJob", "backup-search", ns)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert search["volumes"][-1]["persistentVolumeClaim"] == {"claimName": "meili-data-search-0", "readOnly": True}


def test_no_volume_backups_without_backup_credentials() -> None:
    assert not [m for m in manifests(production("doks"), "CronJob") if m["metadata"]["name"].startswith("backup-")]


def test_env_reaches_accessories_and_buckets() -> None:
    for ns in NAMESPACES:
        data = named("ConfigMap", r.APP_CONFIG, ns)["data"]
        assert data["MONGO_HOST"] == f"mongo.{ns}.svc.cluster.local" and data["SEARCH_PORT"] == "7700"
        assert data["S3_ENDPOINT"] == "https://fra1.digitaloceanspaces.com"
        assert data["S3_BUCKET"] == f"shop-production-{ns.split('-')[1]}-media"
    # The Spaces key's credentials go into each tenant's app Secret (as secrets): under the
    # plainest mock its outputs are unknown, so the dependency is what is visible here.
    result = production("extras")
    keys = {k.urn for k in result.of_type("digitalocean:index/spacesKey:SpacesKey")}
    app_secrets = [
        reg
        for reg in result.of_type("kubernetes:core/v1:Secret")
        if unwrap(reg.inputs["metadata"])["name"] == r.APP_SECRET
    ]
    assert len(app_secrets) == 2
    for reg in app_secrets:
        assert is_secret(reg.inputs["stringData"])
        assert len(keys & set(reg.dependencies)) == 1


def test_spaces_buckets_per_tenant() -> None:
    result = production("extras")
    buckets = result.of_type("digitalocean:index/spacesBucket:SpacesBucket")
    media = sorted(b.inputs["name"] for b in buckets if b.inputs["name"].endswith("-media"))
    assert media == ["shop-production-acme-media", "shop-production-globex-media"]
    for b in buckets:
        if b.inputs["name"].endswith("-media"):
            assert b.inputs["acl"] == "public-read" and b.protect
            assert b.inputs["lifecycleRules"][0]["expiration"]["days"] == 365
    cors = result.of_type("digitalocean:index/spacesBucketCorsConfiguration:SpacesBucketCorsConfiguration")
    assert len(cors) == 2 and cors[0].inputs["corsRules"][0]["allowedOrigins"] == ["https://shop.example.com"]
    keys = result.of_type("digitalocean:index/spacesKey:SpacesKey")
    assert len(keys) == 2
    for key in keys:
        assert [g["permission"] for g in key.inputs["grants"]] == ["readwrite"]


# --- reachability -------------------------------------------------------------------------


def test_app_pods_reach_accessories_and_nothing_else_does() -> None:
    net = network(production("extras"))
    for ns in NAMESPACES:
        mine = pods(ns)
        app = [p for p in mine.values() if p.labels.get(r.ROLE) == "app"]
        assert {"CronJob/job-cleanup", "CronJob/backup-mongo", "Deployment/files"} <= {p.name for p in app}
        for name, port in ACCESSORY_PORTS.items():
            acc = mine[f"StatefulSet/{name}"]
            for a in app:
                assert net.allowed(a, acc, port), (a, acc)
            assert net.allowed(acc, DNS, 53, "UDP")
            # nothing else: other tenants, other namespaces, the internet
            other = [p for o in NAMESPACES if o != ns for p in pods(o).values()]
            peers: list[Pod | External] = [*other, OUTSIDER, PROMETHEUS, *CONTROLLERS.values()]
            for peer in [*peers, External("internet", "198.51.100.7")]:
                assert not net.allowed(peer, acc, port), (peer, acc)
            assert not net.allowed(acc, External("internet", "198.51.100.7"), 443)
        for backup in ("CronJob/backup-files", "CronJob/backup-mongo", "CronJob/backup-search"):
            assert net.allowed(mine[backup], OBJECT_STORE, 443)


def test_egress_rules_open_exactly_their_ports() -> None:
    net = network(production("extras"))
    atlas, elsewhere = External("atlas", "203.0.113.5"), External("elsewhere", "198.51.100.7")
    node = External("node", "10.0.1.10")
    for ns in NAMESPACES:
        api = pods(ns)["Deployment/api"]
        assert net.allowed(api, atlas, 27017)
        assert not net.allowed(api, elsewhere, 27017)  # a CIDR is exactly that block
        assert net.allowed(api, elsewhere, 587)  # a host name: its ports to the internet...
        assert not net.allowed(api, node, 587)  # ...never to private ranges
        assert not net.allowed(api, elsewhere, 25)
    default = network(production("doks"))
    api = next(p for p in workload_pods(manifests(production("doks"))) if p.name == "Deployment/api")
    assert not default.allowed(api, elsewhere, 587) and not default.allowed(api, atlas, 27017)
    assert default.allowed(api, elsewhere, 443)


# --- quota --------------------------------------------------------------------------------


def _quota(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (quota,) = [m for m in objects if m["kind"] == "ResourceQuota"]
    return quota


def test_quota_admits_accessories_jobs_backups_and_claims() -> None:
    issuers = manifests(production("extras"), "ClusterIssuer")
    for ns in NAMESPACES:
        objects = in_namespace(production("extras"), ns)
        d = demand(objects, issuers)
        assert d.pvcs >= 1 + 2 + 2  # files volume, mongo and search, Postgres instances
        assert admission_errors(d, _quota(objects)) == []


def test_quota_model_sees_what_the_quota_must_count() -> None:
    objects = copy.deepcopy(in_namespace(production("extras"), "shop-acme"))
    issuers = manifests(production("extras"), "ClusterIssuer")
    # a quota computed without the accessories' claims is refused
    tight = copy.deepcopy(_quota(objects))
    tight["spec"]["hard"]["persistentvolumeclaims"] = str(int(tight["spec"]["hard"]["persistentvolumeclaims"]) - 2)
    assert any("persistentvolumeclaims" in e for e in admission_errors(demand(objects, issuers), tight))
    # a CronJob allowed to overlap has no bound
    for m in objects:
        if m["kind"] == "CronJob":
            m["spec"]["concurrencyPolicy"] = "Allow"
    assert any("concurrencyPolicy" in e for e in admission_errors(demand(objects, issuers), _quota(objects)))


def test_quota_model_takes_the_larger_init_container() -> None:
    pod = {
        "containers": [
            {
                "name": "a",
                "resources": {
                    "requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"cpu": "200m", "memory": "128Mi"},
                },
            }
        ],
        "initContainers": [
            {
                "name": "i",
                "resources": {"requests": {"cpu": "500m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}},
            }
        ],
    }
    job = {"kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"spec": pod}}}
    d = demand([job])
    assert (d.cpu_req, d.mem_req, d.cpu_lim, d.mem_lim) == (500, 64, 1000, 128)


@pytest.mark.parametrize("kind", ["CronJob"])
def test_reachability_model_sees_cronjob_pods(kind: str) -> None:
    names = {p.name for p in workload_pods(in_namespace(production("extras"), "shop-acme"))}
    assert any(n.startswith(f"{kind}/") for n in names)


def test_extras_pass_the_policy_pack() -> None:
    from policy import ladder_policies as lp

    violations = {}
    for reg in production("extras").resources:
        found = {k: v for k, v in lp.evaluate(reg.type, unwrap(reg.inputs), {"protect": reg.protect}).items() if v}
        if found:
            violations[f"{reg.type} {reg.name}"] = found
    assert violations == {}
