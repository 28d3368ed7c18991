//! Where credentials may go, which key files can be used, and how a failure
//! talking to a remote is classified.

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{CredentialType, ErrorClass, ErrorCode};
use tempfile::TempDir;

use super::spec;
use crate::source::remote::{Access, key_is_encrypted};
use crate::source::{Credentials, Source, SourceError, SourceErrorKind, Trust};

fn token(t: &str) -> Credentials {
    Credentials {
        token: Some(t.into()),
        ..Credentials::default()
    }
}

fn access(url: &str, creds: &Credentials) -> Access {
    Access::new(url, creds, &Trust::default()).unwrap()
}

const PASS: CredentialType = CredentialType::USER_PASS_PLAINTEXT;

#[test]
fn a_token_goes_only_to_the_configured_host_and_port_over_https() {
    let a = access("https://git.example.com/team/config.git", &token("t0ken"));
    assert!(
        a.credential("https://git.example.com/team/config.git", None, PASS)
            .is_ok()
    );
    for elsewhere in [
        // Redirects to another port, another host, plain http.
        "https://git.example.com:8443/team/config.git",
        "https://evil.example.com/team/config.git",
        "http://git.example.com/team/config.git",
        "not a url",
    ] {
        let Err(e) = a.credential(elsewhere, None, PASS) else {
            panic!("a credential was handed out for {elsewhere}");
        };
        assert_eq!(e.code(), ErrorCode::Auth, "{elsewhere}");
    }
}

#[test]
fn an_ssh_key_goes_only_to_the_configured_host() {
    let a = access(
        "git@git.example.com:team/config.git",
        &Credentials::default(),
    );
    let ssh = CredentialType::USERNAME;
    assert!(
        a.credential("git@git.example.com:team/config.git", None, ssh)
            .is_ok()
    );
    assert!(
        a.credential("git@other.example.com:team/config.git", None, ssh)
            .is_err()
    );
}

#[test]
fn a_token_over_plain_http_is_refused_before_anything_is_written() {
    let state = TempDir::new().unwrap();
    let mut s = spec("http://git.example.com/config.git", &state.path().join("m"));
    s.credentials = token("t0ken");
    let err = Source::open_offline(s).unwrap_err();
    assert!(matches!(err, SourceError::InvalidSpec { .. }), "{err}");
    assert!(
        err.to_string().contains("only ever sent over https"),
        "{err}"
    );
    assert!(!state.path().join("m").exists());
}

#[test]
fn a_url_with_a_password_is_refused_never_shown_never_stored() {
    let state = TempDir::new().unwrap();
    let mirror = state.path().join("m");
    let url = "https://bot:ghp_s3cr3t@git.example.com/config.git";
    let err = Source::open(spec(url, &mirror)).unwrap_err();
    assert_eq!(err.kind(), SourceErrorKind::Config);
    let shown = format!("{err} {err:?} {}", err.describe());
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.contains("token_env or token_file"), "{shown}");
    assert!(
        !mirror.exists(),
        "nothing written, so not in any git config"
    );
}

fn keygen(dir: &Path, name: &str, extra: &[&str], passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn with_key(key: &Path, passphrase: Option<&str>) -> Result<Access, SourceError> {
    let creds = Credentials {
        ssh_key_file: Some(key.to_path_buf()),
        ssh_key_passphrase: passphrase.map(str::to_string),
        ..Credentials::default()
    };
    Access::new(
        "ssh://git@git.example.com/config.git",
        &creds,
        &Trust::default(),
    )
}

#[test]
fn a_missing_key_file_is_named() {
    let err = with_key(Path::new("/nonexistent/keys/id_deploy"), None)
        .err()
        .unwrap();
    assert_eq!(err.kind(), SourceErrorKind::Auth);
    let text = err.to_string();
    assert!(
        text.starts_with("repo.ssh_key_file /nonexistent/keys/id_deploy cannot be used: "),
        "{text}"
    );
}

#[test]
fn a_passphrase_protected_key_needs_its_passphrase() {
    let dir = TempDir::new().unwrap();
    let plain = keygen(dir.path(), "plain", &[], "");
    let locked = keygen(dir.path(), "locked", &[], "correct horse");
    let pem = {
        let out = Command::new("ssh-keygen")
            .args([
                "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "pw-12345", "-f",
            ])
            .arg(dir.path().join("pem"))
            .output()
            .unwrap();
        assert!(out.status.success());
        dir.path().join("pem")
    };
    assert!(!key_is_encrypted(&std::fs::read_to_string(&plain).unwrap()));
    assert!(key_is_encrypted(&std::fs::read_to_string(&locked).unwrap()));
    assert!(key_is_encrypted(&std::fs::read_to_string(&pem).unwrap()));

    assert!(with_key(&plain, None).is_ok());
    for key in [&locked, &pem] {
        let err = with_key(key, None).err().unwrap().to_string();
        assert!(err.contains(&key.display().to_string()), "{err}");
        assert!(err.contains("repo.ssh_key_passphrase_env"), "{err}");
        assert!(with_key(key, Some("pw")).is_ok());
    }
}

#[test]
fn failures_keep_their_cause() {
    let https = access(
        "https://git.example.com/config.git",
        &Credentials::default(),
    );
    let ssh = access(
        "ssh://git@git.example.com/config.git",
        &Credentials::default(),
    );
    let e = |code, class| git2::Error::new(code, class, "detail");
    let cases = [
        (
            &https,
            ErrorCode::Auth,
            ErrorClass::Http,
            SourceErrorKind::Auth,
        ),
        (
            &ssh,
            ErrorCode::Auth,
            ErrorClass::Ssh,
            SourceErrorKind::Auth,
        ),
        (
            &ssh,
            ErrorCode::Certificate,
            ErrorClass::Ssh,
            SourceErrorKind::HostKey,
        ),
        (
            &https,
            ErrorCode::Certificate,
            ErrorClass::Ssl,
            SourceErrorKind::Tls,
        ),
        (
            &https,
            ErrorCode::GenericError,
            ErrorClass::Ssl,
            SourceErrorKind::Tls,
        ),
        (
            &https,
            ErrorCode::GenericError,
            ErrorClass::Net,
            SourceErrorKind::Network,
        ),
        (
            &ssh,
            ErrorCode::GenericError,
            ErrorClass::Ssh,
            SourceErrorKind::Network,
        ),
    ];
    for (a, code, class, kind) in cases {
        let err = a.classify(e(code, class), false);
        assert_eq!(err.kind(), kind, "{code:?} {class:?}: {err}");
        assert!(err.describe().contains(": detail"), "{}", err.describe());
        assert_eq!(kind.is_transient(), err.is_retryable(), "{err}");
    }
    // An ssh failure once a key was handed out: the key was not usable.
    let err = ssh.classify(e(ErrorCode::GenericError, ErrorClass::Ssh), true);
    assert_eq!(err.kind(), SourceErrorKind::Auth);
    let err = https.classify(e(ErrorCode::GenericError, ErrorClass::Net), true);
    assert_eq!(err.kind(), SourceErrorKind::Network);
}
