//! Decoding of Kubernetes protobuf request bodies (`application/
//! vnd.kubernetes.protobuf`), which kubectl's typed clients send (e.g.
//! `kubectl create namespace`). Only the kinds and fields those commands
//! use are described (see `types.rs`); a set field outside them is refused
//! with 415 rather than silently dropped. Responses are always JSON.

mod types;
mod wire;

use base64::Engine;
use serde_json::{Map, Value, json};

use types::{Field, Ty, message};
use wire::{Reader, WireValue};

const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    #[error("not a Kubernetes protobuf object (missing the k8s envelope)")]
    Envelope,
    #[error("malformed protobuf: {0}")]
    Wire(String),
    #[error("kubesim does not decode protobuf {0}")]
    Unsupported(String),
}

/// Decodes an enveloped object (`k8s\0` + `runtime.Unknown`) into JSON.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let raw = body.strip_prefix(MAGIC).ok_or(ProtoError::Envelope)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut object = None;
    for field in Reader::new(raw) {
        let (num, v) = field?;
        match (num, v) {
            (1, WireValue::Bytes(tm)) => {
                for f in Reader::new(tm) {
                    match f? {
                        (1, WireValue::Bytes(b)) => api_version = utf8(b)?,
                        (2, WireValue::Bytes(b)) => kind = utf8(b)?,
                        _ => {}
                    }
                }
            }
            (2, WireValue::Bytes(b)) => object = Some(b),
            (3, WireValue::Bytes(enc)) if !enc.is_empty() => {
                return Err(ProtoError::Unsupported(format!(
                    "content encoding {}",
                    utf8(enc)?
                )));
            }
            _ => {}
        }
    }
    let root = types::root(&api_version, &kind)
        .ok_or_else(|| ProtoError::Unsupported(format!("kind {api_version}/{kind}")))?;
    let mut obj = decode_message(object.unwrap_or_default(), root)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

fn utf8(b: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Wire("invalid UTF-8".into()))
}

fn decode_message(bytes: &[u8], name: &'static str) -> Result<Map<String, Value>, ProtoError> {
    let fields = message(name).ok_or_else(|| ProtoError::Unsupported(format!("message {name}")))?;
    let mut out = Map::new();
    for item in Reader::new(bytes) {
        let (num, v) = item?;
        let Some(f) = fields.iter().find(|f| f.num == num) else {
            if v.is_zero() {
                continue;
            }
            return Err(ProtoError::Unsupported(format!("field {num} of {name}")));
        };
        let Some(value) = decode_field(f, v)? else {
            continue;
        };
        if f.repeated || f.ty.is_map() {
            merge_repeated(&mut out, f, value);
        } else {
            out.insert(f.name.into(), value);
        }
    }
    Ok(out)
}

/// Repeated fields and map entries arrive one element at a time.
fn merge_repeated(out: &mut Map<String, Value>, f: &Field, value: Value) {
    let slot = out.entry(f.name.to_string()).or_insert_with(|| {
        if f.ty.is_map() {
            Value::Object(Map::new())
        } else {
            Value::Array(Vec::new())
        }
    });
    match (slot, value) {
        (Value::Object(m), Value::Object(entry)) => m.extend(entry),
        (Value::Array(a), v) => a.push(v),
        _ => {}
    }
}

/// One field's JSON value; None when it is a zero value the JSON form omits.
fn decode_field(f: &Field, v: WireValue<'_>) -> Result<Option<Value>, ProtoError> {
    let keep_zero = f.pointer || f.repeated;
    let value = match (f.ty, v) {
        (Ty::Skip, _) => return Ok(None),
        (Ty::Str, WireValue::Bytes(b)) => {
            let s = utf8(b)?;
            if s.is_empty() && !keep_zero {
                return Ok(None);
            }
            json!(s)
        }
        (Ty::Bool, WireValue::Varint(n)) => {
            if n == 0 && !keep_zero {
                return Ok(None);
            }
            json!(n != 0)
        }
        (Ty::Int, WireValue::Varint(n)) => {
            if n == 0 && !keep_zero {
                return Ok(None);
            }
            json!(n as i64)
        }
        (Ty::Msg(name), WireValue::Bytes(b)) => Value::Object(decode_message(b, name)?),
        (Ty::Time, WireValue::Bytes(b)) => return time(b),
        (Ty::IntOrString, WireValue::Bytes(b)) => int_or_string(b)?,
        (Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_), WireValue::Bytes(b)) => map_entry(f.ty, b)?,
        (ty, v) => {
            return Err(ProtoError::Wire(format!(
                "field {} ({:?}) has wire value {v:?}",
                f.name, ty
            )));
        }
    };
    Ok(Some(value))
}

/// `metav1.Time`: seconds (1) and nanos (2); zero is `null` (omitted).
fn time(b: &[u8]) -> Result<Option<Value>, ProtoError> {
    let mut secs = 0i64;
    for item in Reader::new(b) {
        if let (1, WireValue::Varint(n)) = item? {
            secs = n as i64;
        }
    }
    if secs == 0 {
        return Ok(None);
    }
    let ts = jiff::Timestamp::from_second(secs).map_err(|e| ProtoError::Wire(e.to_string()))?;
    Ok(Some(json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())))
}

fn quantity(b: &[u8]) -> Result<Value, ProtoError> {
    for item in Reader::new(b) {
        if let (1, WireValue::Bytes(s)) = item? {
            return Ok(json!(utf8(s)?));
        }
    }
    Ok(json!("0"))
}

/// `intstr.IntOrString`: type (1: 0 int, 1 string), intVal (2), strVal (3).
fn int_or_string(b: &[u8]) -> Result<Value, ProtoError> {
    let (mut ty, mut int, mut s) = (0, 0i64, String::new());
    for item in Reader::new(b) {
        match item? {
            (1, WireValue::Varint(n)) => ty = n,
            (2, WireValue::Varint(n)) => int = i64::from(n as i32),
            (3, WireValue::Bytes(v)) => s = utf8(v)?,
            _ => {}
        }
    }
    Ok(if ty == 1 { json!(s) } else { json!(int) })
}

/// A map entry (key 1, value 2) as a one-key JSON object.
fn map_entry(ty: Ty, b: &[u8]) -> Result<Value, ProtoError> {
    let mut key = String::new();
    let mut value = match ty {
        Ty::MapMsg(_) => json!({}),
        _ => json!(""),
    };
    for item in Reader::new(b) {
        match (item?, ty) {
            ((1, WireValue::Bytes(k)), _) => key = utf8(k)?,
            ((2, WireValue::Bytes(v)), Ty::MapStr) => value = json!(utf8(v)?),
            ((2, WireValue::Bytes(v)), Ty::MapBytes) => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(v));
            }
            ((2, WireValue::Bytes(v)), Ty::MapMsg("Quantity")) => value = quantity(v)?,
            ((2, WireValue::Bytes(v)), Ty::MapMsg(name)) => {
                value = Value::Object(decode_message(v, name)?)
            }
            _ => {}
        }
    }
    let mut m = Map::new();
    m.insert(key, value);
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(num: u32, wt: u8) -> u8 {
        ((num << 3) as u8) | wt
    }

    fn bytes(num: u32, b: &[u8]) -> Vec<u8> {
        let mut out = vec![tag(num, 2), b.len() as u8];
        out.extend_from_slice(b);
        out
    }

    #[test]
    fn namespace_envelope() {
        let meta = [
            bytes(1, b"demo"),
            bytes(2, b""),
            bytes(11, &[bytes(1, b"team"), bytes(2, b"a")].concat()),
        ]
        .concat();
        let ns = [bytes(1, &meta), bytes(2, b""), bytes(3, b"")].concat();
        let tm = [bytes(1, b"v1"), bytes(2, b"Namespace")].concat();
        let body = [
            MAGIC.to_vec(),
            bytes(1, &tm),
            bytes(2, &ns),
            bytes(3, b""),
            bytes(4, b""),
        ]
        .concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"metadata": {"name": "demo", "labels": {"team": "a"}}, "spec": {},
                             "apiVersion": "v1", "kind": "Namespace"})
        );
        assert_eq!(decode(b"{}"), Err(ProtoError::Envelope));
    }
}
