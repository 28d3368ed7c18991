//! Small helpers: timestamps, uids, generated names, JSON path access.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

static SEED: AtomicU64 = AtomicU64::new(0);
static RNG: Mutex<u64> = Mutex::new(0);

/// The current time as the API server formats `metav1.Time` (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    let ts = jiff::Timestamp::now();
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The current time as `metav1.MicroTime` (RFC 3339, microseconds).
pub fn now_micro() -> String {
    let ts = jiff::Timestamp::now();
    ts.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// A pseudo-random u64 (splitmix64), seeded from the clock once.
pub fn random_u64() -> u64 {
    let mut state = match RNG.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if *state == 0 {
        let nanos = jiff::Timestamp::now().as_nanosecond() as u64;
        *state = nanos ^ SEED.fetch_add(0x9E37_79B9, Ordering::Relaxed) ^ 0xA076_1D64_78BD_642F;
    }
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random float in [0, 1).
pub fn random_f64() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A version-4 UUID string.
pub fn new_uid() -> String {
    let a = random_u64();
    let b = random_u64();
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        ["8", "9", "a", "b"][(b & 3) as usize],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The 5-character suffix `generateName` appends (same alphabet as upstream,
/// which leaves out vowels and confusable characters).
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = random_u64();
    let mut out = String::with_capacity(5);
    for _ in 0..5 {
        out.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
        n /= ALPHABET.len() as u64;
    }
    out
}

/// Follows a path of object keys.
pub fn get_path<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

pub fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get_path(v, path).and_then(Value::as_str)
}

/// The object map at `path`, created (as `{}`) where missing or not an object.
pub fn ensure_object<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(m) = v else {
        unreachable!("the value was just made an object")
    };
    match path.split_first() {
        None => m,
        Some((first, rest)) => {
            let child = m
                .entry(first.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            ensure_object(child, rest)
        }
    }
}

/// Sets `path` (creating parent objects) to `value`.
pub fn set_path(v: &mut Value, path: &[&str], value: Value) {
    if let Some((last, parents)) = path.split_last() {
        ensure_object(v, parents).insert(last.to_string(), value);
    }
}

/// Sets `path` only if absent (server defaulting).
pub fn default_path(v: &mut Value, path: &[&str], value: Value) {
    if let Some((last, parents)) = path.split_last() {
        let m = ensure_object(v, parents);
        match m.get(*last) {
            Some(Value::Null) | None => {
                m.insert(last.to_string(), value);
            }
            Some(_) => {}
        }
    }
}

pub fn remove_path(v: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = v;
    for k in parents {
        cur = cur.get_mut(k)?;
    }
    cur.as_object_mut()?.remove(*last)
}

/// `metadata.name`, `metadata.namespace` and `metadata.resourceVersion` accessors.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    get_str(obj, &["metadata", field])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uid_shape() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(new_uid(), u);
    }

    #[test]
    fn paths() {
        let mut v = json!({"a": 1});
        set_path(&mut v, &["b", "c"], json!(2));
        default_path(&mut v, &["b", "c"], json!(3));
        default_path(&mut v, &["b", "d"], json!(4));
        assert_eq!(v, json!({"a": 1, "b": {"c": 2, "d": 4}}));
        assert_eq!(remove_path(&mut v, &["b", "c"]), Some(json!(2)));
        assert!(now_rfc3339().ends_with('Z'));
    }
}
