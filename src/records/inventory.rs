//! The inventory: what each app applied on a cluster, kept in that cluster
//! (ConfigMaps in `plumb-system`) so that a restarted or replaced daemon
//! knows what it owns. Prune decides from it, never from labels alone.
//!
//! One line per object, readable with kubectl:
//! `<apiVersion> <kind> <namespace or -> <name> <hash16> <fingerprint16 or ->`.
//! Large apps are split into parts of [`PART_SIZE`] lines
//! (`plumb-inventory-<app>`, `plumb-inventory-<app>.1`, ...); a reader takes
//! the union of every part it finds, so a crash between two part writes
//! can only make the inventory larger (never forget an object).
//!
//! A Secret's hash and fingerprint are derived from its values, and whoever
//! may read ConfigMaps in `plumb-system` could test guesses of a weak
//! password against them offline. So for Secrets both are sealed with a
//! per-cluster key ([`HashKey`], kept in the Secret
//! `plumb-system/plumb-inventory-key`): `k:` and 16 hex of
//! HMAC-SHA256(key, value). An entry written before keys existed (plain 16
//! hex) no longer matches, so the Secret is applied once more (an
//! idempotent server-side apply) and its entry is re-sealed: a migration
//! that costs one request per Secret, not a re-apply of everything.

use std::collections::BTreeMap;

use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::model::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, ObjectRef, SYSTEM_NAMESPACE};

/// Label carrying the app an inventory ConfigMap belongs to.
pub const INVENTORY_LABEL: &str = "plumb.dev/inventory";
/// Lines per inventory ConfigMap (~100 bytes each, far below 1 MiB).
pub const PART_SIZE: usize = 4000;
const REVISION_ANNOTATION: &str = "plumb.dev/revision";

/// The name of the Secret holding a cluster's [`HashKey`].
pub const KEY_SECRET: &str = "plumb-inventory-key";
/// Its data key.
pub const KEY_DATA: &str = "key";
/// The prefix of a sealed value.
const SEALED: &str = "k:";

/// The per-cluster key that seals the hashes of Secrets in inventories.
/// Empty (`Default`) when the cluster has none yet: values stay plain.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HashKey(Option<Arc<[u8]>>);

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "HashKey(set)"
        } else {
            "HashKey(none)"
        })
    }
}

impl HashKey {
    pub fn new(bytes: &[u8]) -> HashKey {
        HashKey((!bytes.is_empty()).then(|| Arc::from(bytes)))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// How `value` (a short hash or fingerprint of object `id`) is stored:
    /// sealed for a Secret when there is a key, as it is otherwise.
    pub fn seal(&self, id: &ObjectRef, value: &str) -> String {
        match &self.0 {
            Some(key) if is_secret(id) && !value.is_empty() => {
                // HMAC takes a key of any length: this cannot fail.
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
                    return value.to_string();
                };
                mac.update(value.as_bytes());
                let digest = mac.finalize().into_bytes();
                let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
                format!("{SEALED}{hex}")
            }
            _ => value.to_string(),
        }
    }

    /// Whether a stored value is of an older format than this key writes
    /// (a Secret's value stored plain while a key exists).
    pub fn is_stale(&self, id: &ObjectRef, stored: &str) -> bool {
        self.is_set() && is_secret(id) && !stored.is_empty() && !stored.starts_with(SEALED)
    }
}

/// Whether `id` names a core Secret.
pub fn is_secret(id: &ObjectRef) -> bool {
    id.group.is_empty() && id.kind == "Secret"
}

/// What plumb knows about one applied object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub api_version: String,
    /// Content hash (16 hex) of the manifest last applied.
    pub hash: String,
    /// Fingerprint (16 hex) of plumb's fields after that apply; empty when
    /// the apply was not confirmed (written ahead of it).
    pub fingerprint: String,
}

/// One app's inventory on one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    pub app: String,
    /// The revision last applied completely.
    pub revision: String,
    pub entries: BTreeMap<ObjectRef, Entry>,
    /// How many ConfigMaps held it when read (0: not stored yet).
    pub parts: usize,
    /// The cluster's key sealing the values of Secrets.
    pub key: HashKey,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("inventory {configmap}: line {line}: {source}")]
    Corrupt {
        configmap: String,
        line: usize,
        #[source]
        source: BadLine,
    },
}

/// An inventory line that is not `apiVersion kind namespace name hash
/// fingerprint`.
#[derive(Debug, thiserror::Error)]
#[error("expected 6 fields, found {found}: {text:?}")]
pub struct BadLine {
    found: usize,
    text: String,
}

/// The short form of a hash kept in the inventory.
pub fn short(hash: &str) -> String {
    hash.chars().take(16).collect()
}

/// The name of part `i` of an app's inventory.
pub fn part_name(app: &str, i: usize) -> String {
    if i == 0 {
        format!("plumb-inventory-{app}")
    } else {
        format!("plumb-inventory-{app}.{i}")
    }
}

impl Inventory {
    pub fn new(app: &str) -> Self {
        Inventory {
            app: app.to_string(),
            ..Default::default()
        }
    }

    /// An empty inventory for `app` sealed with `key`.
    pub fn with_key(app: &str, key: HashKey) -> Self {
        Inventory {
            key,
            ..Inventory::new(app)
        }
    }

    /// The entry to store for object `id` applied from content `hash` (full
    /// hex) with `fingerprint` (16 hex, or empty when not confirmed).
    pub fn entry(&self, id: &ObjectRef, api_version: &str, hash: &str, fingerprint: &str) -> Entry {
        Entry {
            api_version: api_version.to_string(),
            hash: self.key.seal(id, &short(hash)),
            fingerprint: self.key.seal(id, fingerprint),
        }
    }

    /// Whether `e` records content `hash` (full hex) for object `id`.
    pub fn same_hash(&self, id: &ObjectRef, e: &Entry, hash: &str) -> bool {
        e.hash == self.key.seal(id, &short(hash))
    }

    /// Whether `e` records the live `fingerprint` of object `id`.
    pub fn same_fingerprint(&self, id: &ObjectRef, e: &Entry, fingerprint: &str) -> bool {
        e.fingerprint == self.key.seal(id, fingerprint)
    }

    /// The ConfigMaps that store this inventory (at least one, even empty).
    pub fn to_configmaps(&self) -> Vec<Value> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|(id, e)| format_line(id, e))
            .collect();
        let chunks: Vec<&[String]> = if lines.is_empty() {
            vec![&[][..]]
        } else {
            lines.chunks(PART_SIZE).collect()
        };
        let parts = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut objects = chunk.join("\n");
                if !objects.is_empty() {
                    objects.push('\n');
                }
                json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": part_name(&self.app, i),
                        "namespace": SYSTEM_NAMESPACE,
                        "labels": { MANAGED_BY_LABEL: MANAGED_BY_VALUE, INVENTORY_LABEL: self.app },
                        "annotations": { REVISION_ANNOTATION: self.revision, "plumb.dev/parts": parts.to_string() },
                    },
                    "data": { "objects": objects },
                })
            })
            .collect()
    }

    /// Reads every app's inventory from the ConfigMaps listed by label.
    pub fn from_configmaps(cms: &[Value]) -> Result<BTreeMap<String, Inventory>, InventoryError> {
        let mut out: BTreeMap<String, Inventory> = BTreeMap::new();
        for cm in cms {
            let Some(app) = cm["metadata"]["labels"][INVENTORY_LABEL].as_str() else {
                continue;
            };
            let name = cm["metadata"]["name"].as_str().unwrap_or_default();
            let inv = out
                .entry(app.to_string())
                .or_insert_with(|| Inventory::new(app));
            let index = name
                .rsplit_once('.')
                .and_then(|(_, i)| i.parse::<usize>().ok())
                .unwrap_or(0);
            inv.parts = inv.parts.max(index + 1);
            if name == part_name(app, 0) {
                inv.revision = cm["metadata"]["annotations"][REVISION_ANNOTATION]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
            }
            let text = cm["data"]["objects"].as_str().unwrap_or("");
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let (id, entry) = parse_line(line).map_err(|source| InventoryError::Corrupt {
                    configmap: format!("{SYSTEM_NAMESPACE}/{name}"),
                    line: i + 1,
                    source,
                })?;
                inv.entries.insert(id, entry);
            }
        }
        Ok(out)
    }
}

fn format_line(id: &ObjectRef, e: &Entry) -> String {
    let fp = if e.fingerprint.is_empty() {
        "-"
    } else {
        &e.fingerprint
    };
    format!(
        "{} {} {} {} {} {}",
        e.api_version,
        id.kind,
        id.namespace.as_deref().unwrap_or("-"),
        id.name,
        if e.hash.starts_with(SEALED) {
            e.hash.clone()
        } else {
            short(&e.hash)
        },
        fp
    )
}

fn parse_line(line: &str) -> Result<(ObjectRef, Entry), BadLine> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let [api_version, kind, ns, name, hash, fp] = f.as_slice() else {
        return Err(BadLine {
            found: f.len(),
            text: line.to_string(),
        });
    };
    let id = ObjectRef {
        group: ObjectRef::group_of(api_version).to_string(),
        kind: kind.to_string(),
        namespace: (*ns != "-").then(|| ns.to_string()),
        name: name.to_string(),
    };
    let entry = Entry {
        api_version: api_version.to_string(),
        hash: hash.to_string(),
        fingerprint: if *fp == "-" {
            String::new()
        } else {
            fp.to_string()
        },
    };
    Ok((id, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fp: &str) -> Entry {
        Entry {
            api_version: "apps/v1".into(),
            hash: "0123456789abcdef0123".into(),
            fingerprint: fp.into(),
        }
    }

    fn id(ns: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: ns.map(Into::into),
            name: name.into(),
        }
    }

    #[test]
    fn an_inventory_round_trips_through_its_configmaps() {
        let mut inv = Inventory::new("web");
        inv.revision = "abc".into();
        inv.entries
            .insert(id(Some("web"), "api"), entry("fedcba9876543210"));
        inv.entries.insert(id(None, "cluster-thing"), entry(""));
        let cms = inv.to_configmaps();
        assert_eq!(cms.len(), 1);
        assert_eq!(cms[0]["metadata"]["name"], "plumb-inventory-web");
        let back = Inventory::from_configmaps(&cms).unwrap();
        let mut expected = inv.clone();
        expected.parts = 1;
        for e in expected.entries.values_mut() {
            e.hash = short(&e.hash);
        }
        assert_eq!(back["web"], expected);
    }

    #[test]
    fn large_inventories_are_split_and_read_back_as_one() {
        let mut inv = Inventory::new("big");
        for i in 0..(PART_SIZE * 2 + 5) {
            inv.entries
                .insert(id(Some("ns"), &format!("o{i}")), entry("aaaaaaaaaaaaaaaa"));
        }
        let cms = inv.to_configmaps();
        assert_eq!(cms.len(), 3);
        assert_eq!(cms[2]["metadata"]["name"], "plumb-inventory-big.2");
        assert_eq!(
            Inventory::from_configmaps(&cms).unwrap()["big"]
                .entries
                .len(),
            PART_SIZE * 2 + 5
        );
    }

    #[test]
    fn parts_from_different_writes_are_unioned_so_nothing_is_forgotten() {
        let mut old = Inventory::new("web");
        old.entries
            .insert(id(Some("web"), "a"), entry("1111111111111111"));
        let mut new = Inventory::new("web");
        new.entries
            .insert(id(Some("web"), "b"), entry("2222222222222222"));
        let mut cms = new.to_configmaps();
        let mut stale = old.to_configmaps().remove(0);
        stale["metadata"]["name"] = json!("plumb-inventory-web.1");
        cms.push(stale);
        let back = Inventory::from_configmaps(&cms).unwrap();
        assert_eq!(back["web"].entries.len(), 2);
    }

    fn secret(name: &str) -> ObjectRef {
        ObjectRef {
            group: String::new(),
            kind: "Secret".into(),
            namespace: Some("web".into()),
            name: name.into(),
        }
    }

    #[test]
    fn a_secrets_hashes_are_sealed_with_the_cluster_key_and_nothing_else_is() {
        let full = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let one = Inventory::with_key("web", HashKey::new(&[1u8; 32]));
        let two = Inventory::with_key("web", HashKey::new(&[2u8; 32]));
        let e = one.entry(&secret("db"), "v1", full, "fedcba9876543210");
        // Neither the plain short hash nor the fingerprint is stored: a
        // reader of the inventory cannot test guesses without the key.
        assert!(e.hash.starts_with("k:") && e.hash.len() == 18, "{e:?}");
        assert_ne!(e.hash, format!("k:{}", short(full)));
        assert!(e.fingerprint.starts_with("k:"));
        assert!(one.same_hash(&secret("db"), &e, full));
        assert!(one.same_fingerprint(&secret("db"), &e, "fedcba9876543210"));
        // Another cluster's key seals differently.
        assert_ne!(two.entry(&secret("db"), "v1", full, "").hash, e.hash);
        // Not-yet-confirmed stays empty; other kinds stay plain.
        assert_eq!(one.entry(&secret("db"), "v1", full, "").fingerprint, "");
        let cm = one.entry(&id(Some("web"), "api"), "apps/v1", full, "fedcba9876543210");
        assert_eq!(cm.hash, short(full));
        assert_eq!(cm.fingerprint, "fedcba9876543210");
        // A sealed entry survives the ConfigMap round trip.
        let mut inv = one.clone();
        inv.entries.insert(secret("db"), e.clone());
        let back = Inventory::from_configmaps(&inv.to_configmaps()).unwrap();
        assert_eq!(back["web"].entries[&secret("db")], e);
    }

    #[test]
    fn a_plain_secret_entry_is_stale_once_the_cluster_has_a_key() {
        let plain = Inventory::new("web").entry(&secret("db"), "v1", "00112233445566778899", "");
        assert!(!HashKey::default().is_stale(&secret("db"), &plain.hash));
        let key = HashKey::new(&[7u8; 32]);
        assert!(key.is_stale(&secret("db"), &plain.hash));
        assert!(!key.is_stale(&id(None, "x"), &plain.hash));
        let sealed = Inventory::with_key("web", key.clone()).entry(
            &secret("db"),
            "v1",
            "00112233445566778899",
            "",
        );
        assert!(!key.is_stale(&secret("db"), &sealed.hash));
        assert_eq!(format!("{key:?}"), "HashKey(set)");
    }

    #[test]
    fn a_corrupt_line_names_the_configmap_and_line() {
        let cm = json!({"metadata": {"name": "plumb-inventory-web", "labels": {INVENTORY_LABEL: "web"}}, "data": {"objects": "v1 ConfigMap web a 00 -\nbroken\n"}});
        let err = Inventory::from_configmaps(&[cm]).unwrap_err().to_string();
        assert!(
            err.starts_with("inventory plumb-system/plumb-inventory-web: line 2:"),
            "{err}"
        );
    }
}
