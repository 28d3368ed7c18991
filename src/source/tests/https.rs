//! A real https "git server" on loopback (rustls, a certificate from a test
//! CA) that redirects or asks for credentials, and records every request:
//! the token reaches the configured host and port only, and the CA bundle
//! decides which certificates are trusted.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tempfile::TempDir;

use super::spec;
use crate::source::{Credentials, Source, SourceErrorKind, SourceSpec, Trust};

const TOKEN: &str = "t0ken-n0t-for-you";

/// A test CA and a server certificate it issued for 127.0.0.1.
struct Pki {
    ca_pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        Pki {
            ca_pem,
            config: Arc::new(config),
        }
    }
}

/// An https server answering every request with `respond(head)`; keeps
/// every request head it read.
struct Server {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(pki: &Pki, respond: impl Fn(&str) -> String + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (config, seen) = (pki.config.clone(), heads.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(tcp) = stream else { return };
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                if head.is_empty() {
                    continue; // a handshake refused by the client
                }
                let response = respond(&head);
                seen.lock().unwrap().push(head);
                let _ = tls.write_all(response.as_bytes());
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        Server { port, heads }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/config.git", self.port)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn saw_credentials(&self) -> bool {
        self.heads()
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("\nauthorization:"))
    }
}

fn unauthorized(_: &str) -> String {
    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
}

fn redirect_to(port: u16) -> impl Fn(&str) -> String {
    move |head: &str| {
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        format!(
            "HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1:{port}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    }
}

fn https_spec(url: &str, state: &TempDir, ca: Option<&str>) -> SourceSpec {
    let mut s = spec(url, &state.path().join("mirror"));
    s.credentials = Credentials {
        token: Some(TOKEN.into()),
        ..Credentials::default()
    };
    if let Some(pem) = ca {
        let file = state.path().join("ca.pem");
        std::fs::write(&file, pem).unwrap();
        s.trust = Trust {
            known_hosts_file: None,
            ca_file: Some(file),
        };
    }
    s
}

#[test]
fn the_token_reaches_the_configured_endpoint() {
    let pki = Pki::new();
    let server = Server::start(&pki, unauthorized);
    let state = TempDir::new().unwrap();
    let mut source =
        Source::open_offline(https_spec(&server.url(), &state, Some(&pki.ca_pem))).unwrap();
    let err = source.refresh().unwrap_err();
    assert_eq!(err.kind(), SourceErrorKind::Auth, "{}", err.describe());
    assert!(
        server.saw_credentials(),
        "the configured server got no credentials: {:?}",
        server.heads()
    );
}

#[test]
fn a_redirect_to_another_port_gets_no_token() {
    let pki = Pki::new();
    let elsewhere = Server::start(&pki, unauthorized);
    let configured = Server::start(&pki, redirect_to(elsewhere.port));
    let state = TempDir::new().unwrap();
    let spec = https_spec(&configured.url(), &state, Some(&pki.ca_pem));
    let mut source = Source::open_offline(spec).unwrap();
    let err = source.refresh().unwrap_err();
    assert!(!configured.heads().is_empty());
    assert!(
        !elsewhere.heads().is_empty(),
        "the redirect was not followed: the test proves nothing"
    );
    assert!(
        !elsewhere.saw_credentials(),
        "the token was sent to the redirect target: {:?}",
        elsewhere.heads()
    );
    assert_eq!(err.kind(), SourceErrorKind::Auth, "{}", err.describe());
    assert!(!format!("{err:?}").contains(TOKEN));
}

#[test]
fn a_certificate_not_issued_by_the_configured_ca_is_refused_before_any_request() {
    let pki = Pki::new();
    let server = Server::start(&pki, unauthorized);
    let stranger = Pki::new();
    for ca in [Some(stranger.ca_pem.as_str()), None] {
        let state = TempDir::new().unwrap();
        let mut source = Source::open_offline(https_spec(&server.url(), &state, ca)).unwrap();
        let err = source.refresh().unwrap_err();
        assert_eq!(err.kind(), SourceErrorKind::Tls, "{}", err.describe());
        assert!(!err.is_retryable());
    }
    assert!(server.heads().is_empty(), "{:?}", server.heads());
}
