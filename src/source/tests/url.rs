//! Remote URLs taken apart as git reads them.

use crate::source::{RemoteUrl, Scheme, is_remote_url, redact};

fn parse(url: &str) -> RemoteUrl {
    RemoteUrl::parse(url).unwrap().unwrap()
}

#[test]
fn https_urls_give_host_and_default_or_explicit_port() {
    let u = parse("https://Git.Example.com/team/config.git");
    assert_eq!(u.scheme, Scheme::Https);
    assert_eq!((u.host.as_str(), u.port), ("git.example.com", 443));
    assert_eq!(u.user, None);
    assert!(!u.has_password);
    let u = parse("https://bot@git.example.com:8443/config.git");
    assert_eq!((u.host.as_str(), u.port), ("git.example.com", 8443));
    assert_eq!(u.user.as_deref(), Some("bot"));
    assert_eq!(parse("http://h/x").port, 80);
    let v6 = parse("https://[::1]:9443/x.git");
    assert_eq!((v6.host.as_str(), v6.port), ("::1", 9443));
}

#[test]
fn scp_like_urls_are_ssh_on_port_22_with_any_user() {
    for (url, user, host) in [
        ("git@github.com:team/config.git", Some("git"), "github.com"),
        (
            "deploy@git.example.com:config.git",
            Some("deploy"),
            "git.example.com",
        ),
        ("git.example.com:team/config", None, "git.example.com"),
    ] {
        assert!(is_remote_url(url), "{url}");
        let u = parse(url);
        assert_eq!(u.scheme, Scheme::Ssh, "{url}");
        assert_eq!(u.user.as_deref(), user, "{url}");
        assert_eq!((u.host.as_str(), u.port), (host, 22), "{url}");
    }
    let u = parse("ssh://git@git.example.com:2222/config.git");
    assert_eq!((u.scheme, u.port), (Scheme::Ssh, 2222));
}

#[test]
fn local_paths_are_not_remotes() {
    for path in ["/srv/config", "./config", "config", "C:/config", "a/b:c"] {
        assert_eq!(RemoteUrl::parse(path).unwrap(), None, "{path}");
        assert!(!is_remote_url(path), "{path}");
    }
}

#[test]
fn an_embedded_password_is_detected_and_redacted() {
    let url = "https://bot:ghp_s3cr3tT0ken@git.example.com/config.git";
    assert!(parse(url).has_password);
    let shown = redact(url);
    assert_eq!(shown, "https://bot:***@git.example.com/config.git");
    assert!(!format!("{:?}", parse(url)).contains("s3cr3t"));
    assert_eq!(redact("https://bot@h/x"), "https://bot@h/x");
}

#[test]
fn endpoints_differ_by_scheme_host_or_port() {
    let base = parse("https://git.example.com/config.git");
    assert!(base.same_endpoint(&parse("https://git.example.com:443/other/path")));
    assert!(base.same_endpoint(&parse("https://x-access-token@GIT.example.com/config.git")));
    assert!(!base.same_endpoint(&parse("https://git.example.com:8443/config.git")));
    assert!(!base.same_endpoint(&parse("https://evil.example.com/config.git")));
    assert!(!base.same_endpoint(&parse("http://git.example.com:443/config.git")));
}

#[test]
fn a_bad_port_is_an_error() {
    assert!(RemoteUrl::parse("https://h:99999/x").is_err());
    assert!(RemoteUrl::parse("https://h:abc/x").is_err());
    assert!(RemoteUrl::parse("https:///x").is_err());
}
