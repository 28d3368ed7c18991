//! Impersonation end to end against kubesim over HTTP: an app applied as a
//! tenant's service account (`Impersonate-User`) can write only where the
//! cluster's RBAC lets that account, and the server's 403 is reported on
//! the object with its file and line, with nothing of the app applied.
//!
//! Test-only path: the apply stage ([`plumb::apply::apply_app`]) is called
//! directly with an [`AppPolicy`] that impersonates, because which app
//! impersonates whom comes from the tenants of `plumb.yaml` (wired by
//! `engine::worker::decide::impersonation`), not from this change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};

use plumb::apply::{AppPolicy, ApplyError, ApplyOptions, ApplyOutcome, apply_app};
use plumb::cluster::{Cluster, Impersonation};
use plumb::live::LiveCache;
use plumb::model::{
    APP_LABEL, DesiredObject, DesiredSet, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ObjectRef, Origin,
};
use plumb::plan::{self, PrunePolicy};
use plumb::records::{self, Inventory};

const DEPLOYER: &str = "system:serviceaccount:team-a:deployer";

/// team-a's deployer may read, create and patch ConfigMaps in team-a (not
/// delete them), as a platform would bind a tenant's account, and only
/// patch them in team-c (through its group).
const RBAC: &[&str] = &[
    r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}"#,
    r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}}"#,
    r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-c"}}"#,
    r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "configmap-patcher"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]}]}"#,
    r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "team-a-patches", "namespace": "team-c"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "configmap-patcher"},
        "subjects": [{"kind": "Group", "name": "system:serviceaccounts:team-a"}]}"#,
    r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "deployer", "namespace": "team-a"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "patch"]}]}"#,
    r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "deployer", "namespace": "team-a"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "team-a"},
                     {"kind": "Group", "name": "team-a-deployers"}]}"#,
];

struct Sim {
    _sim: kubesim::Kubesim,
    cluster: Arc<Cluster>,
    live: Arc<LiveCache>,
}

impl Sim {
    async fn start() -> Sim {
        let sim = kubesim::Kubesim::start(kubesim::Options::default())
            .await
            .unwrap();
        let client = sim.client().await.unwrap();
        let cluster = Arc::new(Cluster::new("sim", client));
        records::ensure_namespace(&cluster).await.unwrap();
        for doc in RBAC {
            let obj: Value = serde_json::from_str(doc).unwrap();
            let kind = cluster
                .resolve(
                    obj["apiVersion"].as_str().unwrap(),
                    obj["kind"].as_str().unwrap(),
                )
                .await
                .unwrap();
            let ns = obj["metadata"]["namespace"].as_str();
            cluster.create(&kind, ns, &obj).await.unwrap();
        }
        let (wake, _rx) = tokio::sync::mpsc::unbounded_channel();
        let live = Arc::new(LiveCache::new(cluster.clone(), wake));
        Sim {
            _sim: sim,
            cluster,
            live,
        }
    }

    /// Plans and applies `objects` as app `app` over `inventory`.
    async fn apply(
        &self,
        app: &str,
        objects: Vec<DesiredObject>,
        inventory: &Inventory,
        impersonate: Option<Impersonation>,
    ) -> ApplyOutcome {
        let desired = DesiredSet {
            app: app.into(),
            cluster: "sim".into(),
            objects,
        };
        let policy = PrunePolicy {
            prune: true,
            allow_mass_prune: true,
        };
        let cs = plan::plan(&desired, "rev", inventory, &*self.live, policy);
        let policy = AppPolicy {
            adopt: false,
            impersonate,
        };
        apply_app(
            &self.cluster,
            &self.live,
            &desired,
            inventory,
            &cs,
            &ApplyOptions::default(),
            policy,
        )
        .await
    }

    async fn configmap(&self, ns: &str, name: &str) -> Option<Value> {
        let kind = self.cluster.resolve("v1", "ConfigMap").await.unwrap();
        self.cluster.get(&kind, Some(ns), name).await.unwrap()
    }
}

fn deployer() -> Option<Impersonation> {
    Some(Impersonation::service_account("team-a", "deployer"))
}

/// A ConfigMap of app `app` as rendered from `path` at `line`.
fn cm(app: &str, ns: &str, name: &str, path: &str, line: usize) -> DesiredObject {
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, APP_LABEL: app},
        },
        "data": {"k": "v"},
    });
    let id = ObjectRef {
        group: String::new(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: name.into(),
    };
    let origin = Origin {
        path: path.into(),
        line,
        column: 1,
    };
    DesiredObject::new(id, "v1".into(), manifest, origin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_outside_the_accounts_rbac_is_refused_with_file_and_line() {
    let sim = Sim::start().await;
    let objects = vec![
        cm("team-a", "team-a", "mine", "teams/a/mine.yaml", 1),
        cm("team-a", "team-b", "theirs", "teams/a/theirs.yaml", 7),
    ];
    let out = sim
        .apply("team-a", objects, &Inventory::new("team-a"), deployer())
        .await;
    let Some(ApplyError::Rejected(failures)) = &out.error else {
        panic!("expected a rejection, got {:?}", out.error);
    };
    assert_eq!(failures.len(), 1, "{failures:?}");
    let shown = failures[0].to_string();
    let want = format!(
        "teams/a/theirs.yaml:7:1: ConfigMap/team-b/theirs: forbidden for {DEPLOYER} (the identity plumb impersonates for this app): configmaps \"theirs\" is forbidden: User \"{DEPLOYER}\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"team-b\""
    );
    assert!(shown.starts_with(&want), "{shown}");
    // The dry-run refused the app's revision: nothing of it was written.
    assert!(sim.configmap("team-a", "mine").await.is_none());
    assert!(sim.configmap("team-b", "theirs").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_account_may_make_succeeds_and_its_prune_is_bounded_too() {
    let sim = Sim::start().await;
    let objects = vec![cm("team-a", "team-a", "mine", "teams/a/mine.yaml", 1)];
    let out = sim
        .apply("team-a", objects, &Inventory::new("team-a"), deployer())
        .await;
    assert!(out.error.is_none(), "{:?}", out.error);
    let stored = sim.configmap("team-a", "mine").await.expect("applied");
    assert_eq!(stored["data"]["k"], "v");
    assert_eq!(stored["metadata"]["managedFields"][0]["manager"], "plumb");

    // The account may not delete: the prune is refused by the server and
    // the object stays in the inventory, to be retried.
    let out2 = sim
        .apply("team-a", Vec::new(), &out.inventory, deployer())
        .await;
    let Some(ApplyError::PruneFailed(failures)) = &out2.error else {
        panic!("expected a refused prune, got {:?}", out2.error);
    };
    assert!(
        failures[0].message.contains(&format!(
            "User \"{DEPLOYER}\" cannot delete resource \"configmaps\" in API group \"\" in the namespace \"team-a\""
        )),
        "{}",
        failures[0]
    );
    assert!(sim.configmap("team-a", "mine").await.is_some());
    assert_eq!(out2.inventory.entries.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_impersonation_plumb_writes_as_itself() {
    let sim = Sim::start().await;
    let objects = vec![cm("team-a", "team-b", "theirs", "teams/a/theirs.yaml", 7)];
    let out = sim
        .apply("team-a", objects, &Inventory::new("team-a"), None)
        .await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(sim.configmap("team-b", "theirs").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_needs_create_not_only_patch() {
    let sim = Sim::start().await;
    let objects = vec![cm("team-a", "team-c", "new", "teams/a/new.yaml", 2)];
    let out = sim
        .apply("team-a", objects, &Inventory::new("team-a"), deployer())
        .await;
    let Some(ApplyError::Rejected(failures)) = &out.error else {
        panic!("expected a rejection, got {:?}", out.error);
    };
    let shown = failures[0].to_string();
    assert!(
        shown.starts_with(&format!(
            "teams/a/new.yaml:2:1: ConfigMap/team-c/new: forbidden for {DEPLOYER} (the identity plumb impersonates for this app): configmaps \"new\" is forbidden: "
        )),
        "{shown}"
    );
    assert!(
        shown
            .ends_with("creating an object by server-side apply needs `create` as well as `patch`"),
        "{shown}"
    );
    assert!(sim.configmap("team-c", "new").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonated_groups_are_sent_with_the_user() {
    let sim = Sim::start().await;
    let as_jane = |groups: &[&str]| {
        Some(Impersonation {
            user: "jane".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        })
    };
    let objects = || vec![cm("jane", "team-a", "janes", "teams/a/janes.yaml", 1)];
    let out = sim
        .apply("jane", objects(), &Inventory::new("jane"), as_jane(&[]))
        .await;
    let Some(ApplyError::Rejected(failures)) = &out.error else {
        panic!("expected a rejection, got {:?}", out.error);
    };
    assert!(
        failures[0]
            .message
            .contains(r#"User "jane" cannot patch resource "configmaps""#),
        "{}",
        failures[0]
    );
    let out = sim
        .apply(
            "jane",
            objects(),
            &Inventory::new("jane"),
            as_jane(&["team-a-deployers"]),
        )
        .await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(sim.configmap("team-a", "janes").await.is_some());
}
