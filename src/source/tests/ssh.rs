//! A real ssh remote: OpenSSH's `sshd` on loopback, serving a bare
//! repository to a passphrase-protected key, its host key listed (or not)
//! in a known_hosts file. Needs `/usr/sbin/sshd` (Debian: openssh-server,
//! which `scripts/dev.sh test` installs).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{Repo, spec};
use crate::source::{Credentials, Source, SourceErrorKind, SourceSpec, Trust};

const SSHD: &str = "/usr/sbin/sshd";
const PASSPHRASE: &str = "correct horse battery";

fn keygen(path: &Path, passphrase: &str) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// sshd on 127.0.0.1, a bare repository with one commit, a client key.
struct SshRemote {
    dir: TempDir,
    sshd: Child,
    port: u16,
    server: Repo,
    host_key: String,
    client_key: PathBuf,
}

impl Drop for SshRemote {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

impl SshRemote {
    fn start() -> SshRemote {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is needed for this test: `apt-get install -y openssh-server` \
             (scripts/dev.sh test installs it)"
        );
        let dir = TempDir::new().unwrap();
        let host_key = keygen(&dir.path().join("host_key"), "");
        let client_key = dir.path().join("client_key");
        let client_public = keygen(&client_key, PASSPHRASE);
        std::fs::write(dir.path().join("authorized_keys"), client_public + "\n").unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let user = whoami();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowUsers {user}\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        // Debian's sshd insists on its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let sshd = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let server = Repo::init_bare();
        let work = Repo::clone_of(&server.path);
        work.git(&["checkout", "-q", "-b", "main"]);
        work.write("plumb.yaml", "apps: {}\n");
        work.commit("first");
        work.git(&["push", "-q", "origin", "main"]);
        SshRemote {
            dir,
            sshd,
            port,
            server,
            host_key,
            client_key,
        }
    }

    fn url(&self) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            whoami(),
            self.port,
            self.server.path.display()
        )
    }

    /// A spec with the client key and `passphrase`, trusting `known_host`
    /// (a `type base64` public key) for this server.
    fn spec(&self, passphrase: &str, known_host: &str) -> SourceSpec {
        let state = self.dir.path().join(format!("state-{}", fastrand::u32(..)));
        let known_hosts = self.dir.path().join(format!("known-{}", fastrand::u32(..)));
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{} {known_host}\n", self.port),
        )
        .unwrap();
        let mut s = spec(&self.url(), &state.join("mirror"));
        s.credentials = Credentials {
            token: None,
            ssh_key_file: Some(self.client_key.clone()),
            ssh_key_passphrase: Some(passphrase.into()),
        };
        s.trust = Trust {
            known_hosts_file: Some(known_hosts),
            ca_file: None,
        };
        s
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_passphrase_protected_key_fetches_from_a_trusted_host() {
    let remote = SshRemote::start();
    let mut source = Source::open(remote.spec(PASSPHRASE, &remote.host_key)).unwrap();
    assert_eq!(
        source.head().unwrap().id,
        remote.server.rev("refs/heads/main")
    );
    assert_eq!(source.refresh().unwrap(), None);
}

#[test]
fn an_unknown_host_key_is_refused_as_host_key_before_authenticating() {
    let remote = SshRemote::start();
    let impostor = keygen(&remote.dir.path().join("impostor"), "");
    let err = Source::open(remote.spec(PASSPHRASE, &impostor)).unwrap_err();
    assert_eq!(err.kind(), SourceErrorKind::HostKey, "{}", err.describe());
    assert!(!err.is_retryable());
}

#[test]
fn a_wrong_passphrase_is_an_auth_error() {
    let remote = SshRemote::start();
    let err = Source::open(remote.spec("wrong passphrase", &remote.host_key)).unwrap_err();
    assert_eq!(err.kind(), SourceErrorKind::Auth, "{}", err.describe());
    assert!(err.to_string().contains("wrong key passphrase"), "{err}");
}

#[test]
fn a_missing_repository_keeps_the_servers_answer_and_a_closed_port_is_network() {
    let remote = SshRemote::start();
    let mut s = remote.spec(PASSPHRASE, &remote.host_key);
    s.url = s.url.replace("/repo", "/no-such-repo");
    let err = Source::open(s).unwrap_err();
    assert!(
        err.describe()
            .contains("does not appear to be a git repository"),
        "the server's answer is kept: {}",
        err.describe()
    );
    assert!(!err.is_retryable());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = remote.spec(PASSPHRASE, &remote.host_key);
    s.url = s
        .url
        .replace(&format!(":{}/", remote.port), &format!(":{port}/"));
    let err = Source::open(s).unwrap_err();
    assert_eq!(err.kind(), SourceErrorKind::Network, "{}", err.describe());
}
