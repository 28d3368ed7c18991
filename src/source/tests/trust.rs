//! Host keys against a known_hosts file (written and hashed by OpenSSH's
//! own `ssh-keygen`), certificates against a CA bundle (made with rcgen).

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use tempfile::TempDir;

use crate::source::trust::{HostKeyVerdict, KnownHosts, LoadedTrust};
use crate::source::{SourceErrorKind, Trust};

/// A fresh ed25519 public key: (`type base64`, raw blob).
fn host_key(dir: &Path, name: &str) -> (String, Vec<u8>) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let mut fields = public.split_whitespace();
    let (kind, b64) = (fields.next().unwrap(), fields.next().unwrap());
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    (format!("{kind} {b64}"), blob)
}

#[test]
fn known_hosts_trusts_the_listed_key_for_the_listed_host_and_port() {
    let dir = TempDir::new().unwrap();
    let (line, key) = host_key(dir.path(), "a");
    let (other_line, other) = host_key(dir.path(), "b");
    let hosts = KnownHosts::parse(&format!(
        "# comment\n\ngit.example.com,10.0.0.1 {line}\n[git.example.com]:2222 {other_line}\n\
         *.corp.example,!bad.corp.example {line}\n@cert-authority * {other_line}\nnot a line\n"
    ));
    use HostKeyVerdict::*;
    assert_eq!(hosts.check("git.example.com", 22, &key), Trusted);
    assert_eq!(hosts.check("GIT.example.com", 22, &key), Trusted);
    assert_eq!(hosts.check("10.0.0.1", 22, &key), Trusted);
    assert_eq!(hosts.check("git.example.com", 22, &other), Changed);
    assert_eq!(hosts.check("git.example.com", 2222, &other), Trusted);
    assert_eq!(hosts.check("git.example.com", 2222, &key), Changed);
    assert_eq!(hosts.check("a.corp.example", 22, &key), Trusted);
    assert_eq!(hosts.check("bad.corp.example", 22, &key), Unknown);
    assert_eq!(hosts.check("elsewhere.example.com", 22, &key), Unknown);
    assert_eq!(hosts.check("elsewhere.example.com", 22, &other), Unknown);

    let revoked = KnownHosts::parse(&format!("* {line}\n@revoked * {line}\n"));
    assert_eq!(revoked.check("git.example.com", 22, &key), Revoked);
}

#[test]
fn hashed_known_hosts_entries_match() {
    let dir = TempDir::new().unwrap();
    let (line, key) = host_key(dir.path(), "a");
    let (_, other) = host_key(dir.path(), "b");
    let file = dir.path().join("known_hosts");
    std::fs::write(
        &file,
        format!("git.example.com {line}\n[127.0.0.1]:2222 {line}\n"),
    )
    .unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("|1|") && !text.contains("example"),
        "{text}"
    );
    let hosts = KnownHosts::parse(&text);
    assert_eq!(
        hosts.check("git.example.com", 22, &key),
        HostKeyVerdict::Trusted
    );
    assert_eq!(
        hosts.check("127.0.0.1", 2222, &key),
        HostKeyVerdict::Trusted
    );
    assert_eq!(hosts.check("127.0.0.1", 22, &key), HostKeyVerdict::Unknown);
    assert_eq!(
        hosts.check("git.example.com", 22, &other),
        HostKeyVerdict::Changed
    );
}

#[test]
fn a_configured_known_hosts_file_decides_and_says_why() {
    let dir = TempDir::new().unwrap();
    let (line, key) = host_key(dir.path(), "a");
    let (_, other) = host_key(dir.path(), "b");
    let file = dir.path().join("known_hosts");
    std::fs::write(&file, format!("git.example.com {line}\n")).unwrap();
    let trust = LoadedTrust::load(&Trust {
        known_hosts_file: Some(file.clone()),
        ca_file: None,
    })
    .unwrap();
    assert_eq!(
        trust.check_host_key("git.example.com", 22, &key),
        Some(Ok(()))
    );
    let changed = trust
        .check_host_key("git.example.com", 22, &other)
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(changed.contains("man-in-the-middle"), "{changed}");
    assert!(changed.contains(&file.display().to_string()), "{changed}");
    // Without the setting, git2's default check applies.
    let default = LoadedTrust::load(&Trust::default()).unwrap();
    assert_eq!(default.check_host_key("git.example.com", 22, &key), None);
    assert_eq!(default.check_tls("git.example.com", b"x"), None);
}

#[test]
fn a_missing_trust_file_is_named() {
    let err = LoadedTrust::load(&Trust {
        known_hosts_file: Some("/nonexistent/known_hosts".into()),
        ca_file: None,
    })
    .unwrap_err();
    assert_eq!(err.kind(), SourceErrorKind::Auth);
    assert!(
        err.to_string()
            .starts_with("repo.known_hosts_file /nonexistent/known_hosts cannot be used"),
        "{err}"
    );
    let dir = TempDir::new().unwrap();
    let empty = dir.path().join("ca.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let err = LoadedTrust::load(&Trust {
        known_hosts_file: None,
        ca_file: Some(empty),
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("holds no PEM certificate"),
        "{err}"
    );
}

/// A CA and a server certificate it issued for `names`: (CA PEM, server DER).
fn pki(names: &[&str]) -> (String, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.der().to_vec())
}

#[test]
fn a_ca_bundle_trusts_what_it_issued_for_the_right_host_only() {
    let dir = TempDir::new().unwrap();
    let (ca, leaf) = pki(&["git.example.com", "127.0.0.1"]);
    let (other_ca, _) = pki(&["git.example.com"]);
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, format!("{other_ca}{ca}")).unwrap();
    let trust = LoadedTrust::load(&Trust {
        known_hosts_file: None,
        ca_file: Some(bundle.clone()),
    })
    .unwrap();
    assert_eq!(trust.check_tls("git.example.com", &leaf), Some(Ok(())));
    assert_eq!(trust.check_tls("127.0.0.1", &leaf), Some(Ok(())));
    let wrong_host = trust
        .check_tls("evil.example.com", &leaf)
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        wrong_host.contains(&bundle.display().to_string()),
        "{wrong_host}"
    );

    std::fs::write(&bundle, other_ca).unwrap();
    let strangers = LoadedTrust::load(&Trust {
        known_hosts_file: None,
        ca_file: Some(bundle),
    })
    .unwrap();
    assert!(matches!(
        strangers.check_tls("git.example.com", &leaf),
        Some(Err(_))
    ));
}
