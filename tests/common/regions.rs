//! The engine tests' fixture: clusters `a` (region east) and `b` (region
//! west), app `platform` creating namespace `web`, app `web` substituting
//! cluster variables into its ConfigMaps.

use super::{Env, web_config, web_repo};

/// The `plumb.yaml` of the fixture.
pub fn config() -> String {
    web_config(
        "  a: { labels: { env: test }, vars: { region: east } }\n  b: { labels: { env: test }, vars: { region: west } }\n",
        "    substitute: true\n",
    )
}

/// A ConfigMap `name` with `data.value` and the cluster's region.
pub fn cm(name: &str, value: &str) -> String {
    format!("{}  region: ${{region}}\n", super::cm(name, value))
}

/// The fixture with ConfigMaps `names` (value v1) in app `web`, committed.
pub async fn env(names: &[&str]) -> Env {
    let repo = web_repo(&config());
    for n in names {
        repo.write(&format!("apps/web/{n}.yaml"), &cm(n, "v1"));
    }
    repo.commit("initial");
    Env::new(repo, &["a", "b"]).await
}
