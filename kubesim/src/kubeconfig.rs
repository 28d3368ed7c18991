//! Kubeconfig files that both `kube` and `kubectl` accept.

use base64::Engine;
use serde_json::json;

/// A kubeconfig with one cluster, user and context named `context`.
/// `ca_pem`: the CA for `https` servers.
pub fn render(server: &str, context: &str, ca_pem: Option<&str>) -> String {
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca_pem {
        let b64 = base64::engine::general_purpose::STANDARD.encode(ca.as_bytes());
        cluster["certificate-authority-data"] = json!(b64);
    }
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": {"token": "kubesim"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": "default"}}],
        "current-context": context,
    });
    serde_yaml::to_string(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_kube() {
        let y = render("http://127.0.0.1:1234", "sim", None);
        let kc = kube::config::Kubeconfig::from_yaml(&y).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("sim"));
        assert!(y.contains("server: http://127.0.0.1:1234"));
    }
}
