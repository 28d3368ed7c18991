use std::cell::RefCell;
use std::collections::BTreeMap;

use super::*;

fn waves() -> Vec<Wave> {
    let w = |name: &str, clusters: &[&str], soak: u64| Wave {
        name: name.into(),
        clusters: clusters.iter().map(|c| c.to_string()).collect(),
        soak: Duration::from_secs(soak),
    };
    vec![
        w("canary", &["stage"], 60),
        w("prod-eu", &["eu"], 600),
        w("prod", &["us", "ap"], 0),
    ]
}

fn head(id: &str) -> Head {
    Head {
        id: id.into(),
        short: id.into(),
        subject: format!("commit {id}"),
    }
}

/// A fake world: per cluster, the app `web` at a revision with a state.
#[derive(Default)]
struct World {
    apps: RefCell<BTreeMap<String, AppView>>,
}

impl World {
    fn set(&self, cluster: &str, rev: &str, sync: SyncState, health: HealthState) {
        self.apps.borrow_mut().insert(
            cluster.into(),
            AppView {
                sync,
                desired: Some(rev.into()),
                applied: Some(rev.into()),
                health: Some(health),
                reason: format!("{} reason", health.as_str()),
            },
        );
    }

    /// Every cluster runs what the state assigns it, healthy.
    fn converge(&self, state: &State) {
        for c in ["stage", "eu", "us", "ap"] {
            if let Assignment::Wave(Some(rev)) = state.assignment(&waves(), c) {
                let known = self.apps.borrow().get(c).and_then(|v| v.desired.clone());
                if known.as_deref() != Some(rev.as_str()) {
                    self.set(c, &rev, SyncState::Synced, HealthState::Healthy);
                }
            }
        }
    }
}

fn step(
    state: &mut State,
    world: &World,
    h: Option<&Head>,
    control: &Control,
    now_s: u64,
) -> (Report, Option<Revert>) {
    let ws = waves();
    let apps = |_: &str| vec!["web".to_string()];
    let look = |c: &str, _: &str| world.apps.borrow().get(c).cloned();
    state.step(&Input {
        waves: &ws,
        auto_revert: true,
        head: h,
        config_error: None,
        apps: &apps,
        look: &look,
        control,
        now: now_s * 1000,
    })
}

fn revs(state: &State) -> Vec<Option<String>> {
    state.waves.iter().map(|w| w.revision.clone()).collect()
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

#[test]
fn a_good_commit_walks_the_waves_after_each_soak() {
    let (mut st, w, c) = (State::default(), World::default(), Control::default());
    let a = head("a");
    step(&mut st, &w, Some(&a), &c, 0);
    assert_eq!(revs(&st), [s("a"), None, None]);
    assert_eq!(st.assignment(&waves(), "other"), Assignment::Branch);
    let (r, _) = step(&mut st, &w, Some(&a), &c, 1);
    assert_eq!(r.waves[0].phase, "waiting", "{r:?}");
    w.converge(&st);
    let (r, _) = step(&mut st, &w, Some(&a), &c, 10);
    assert_eq!(r.waves[0].phase, "soaking");
    assert_eq!(r.waves[0].soak_left_ms, Some(60_000));
    let (r, _) = step(&mut st, &w, Some(&a), &c, 69);
    assert_eq!(r.waves[0].soak_left_ms, Some(1_000));
    assert_eq!(revs(&st), [s("a"), None, None], "not before the soak");
    step(&mut st, &w, Some(&a), &c, 70);
    assert_eq!(revs(&st), [s("a"), s("a"), None]);
    w.converge(&st);
    step(&mut st, &w, Some(&a), &c, 71);
    step(&mut st, &w, Some(&a), &c, 671);
    assert_eq!(revs(&st), [s("a"), s("a"), s("a")]);
    w.converge(&st);
    let (r, revert) = step(&mut st, &w, Some(&a), &c, 672);
    assert!(revert.is_none());
    assert!(r.waves.iter().all(|w| w.phase == "done"), "{r:?}");
}

#[test]
fn a_wave_going_unhealthy_restarts_its_soak() {
    let (mut st, w, c) = (State::default(), World::default(), Control::default());
    let a = head("a");
    step(&mut st, &w, Some(&a), &c, 0);
    w.converge(&st);
    step(&mut st, &w, Some(&a), &c, 0);
    w.set("stage", "a", SyncState::Synced, HealthState::Progressing);
    step(&mut st, &w, Some(&a), &c, 50);
    w.set("stage", "a", SyncState::Synced, HealthState::Healthy);
    step(&mut st, &w, Some(&a), &c, 100);
    step(&mut st, &w, Some(&a), &c, 159);
    assert_eq!(revs(&st), [s("a"), None, None], "soak counts from 100");
    step(&mut st, &w, Some(&a), &c, 160);
    assert_eq!(revs(&st), [s("a"), s("a"), None]);
}

#[test]
fn a_failing_wave_halts_and_asks_for_one_revert_to_what_it_ran() {
    let (mut st, w, c) = (State::default(), World::default(), Control::default());
    let (a, b) = (head("a"), head("b"));
    for t in [0, 0, 60, 61, 700, 701] {
        step(&mut st, &w, Some(&a), &c, t);
        w.converge(&st);
    }
    assert_eq!(revs(&st), [s("a"), s("a"), s("a")]);
    step(&mut st, &w, Some(&b), &c, 1000);
    assert_eq!(revs(&st), [s("b"), s("a"), s("a")]);
    w.set("stage", "b", SyncState::Synced, HealthState::Degraded);
    let (r, revert) = step(&mut st, &w, Some(&b), &c, 1001);
    let revert = revert.expect("a revert");
    assert_eq!((revert.base.as_str(), revert.target.as_str()), ("a", "b"));
    assert!(
        revert
            .message
            .contains("Wave canary failed on cluster stage: app web: Degraded"),
        "{}",
        revert.message
    );
    assert!(revert.message.contains("Plumb-Rollout-Revert: b"));
    assert_eq!(r.waves[0].phase, "halted");
    assert_eq!(r.waves[1].phase, "halted", "{r:?}");
    let halt = st.halt.clone().unwrap();
    assert_eq!(
        (halt.wave.as_str(), halt.cluster.as_str()),
        ("canary", "stage")
    );
    // Never twice, and later waves never get b.
    for t in 1002..1100 {
        let (_, again) = step(&mut st, &w, Some(&b), &c, t);
        assert!(again.is_none());
    }
    assert_eq!(revs(&st), [s("b"), s("a"), s("a")]);
    // The revert goes at once to canary, then on as any commit.
    st.revert_commit = Some("r".into());
    step(&mut st, &w, Some(&head("r")), &c, 1100);
    assert_eq!(revs(&st), [s("r"), s("a"), s("a")]);
    assert!(st.halt.is_none());
}

#[test]
fn a_failure_in_a_later_wave_reverts_to_what_that_wave_ran_and_reaches_back() {
    let (mut st, w, c) = (State::default(), World::default(), Control::default());
    let (a, b) = (head("a"), head("b"));
    for t in [0, 0, 60, 61, 700, 701] {
        step(&mut st, &w, Some(&a), &c, t);
        w.converge(&st);
    }
    for t in [1000, 1000, 1060] {
        step(&mut st, &w, Some(&b), &c, t);
        w.converge(&st);
    }
    assert_eq!(revs(&st), [s("b"), s("b"), s("a")]);
    w.set("eu", "b", SyncState::Failed, HealthState::Healthy);
    let (_, revert) = step(&mut st, &w, Some(&b), &c, 1061);
    assert_eq!(revert.unwrap().base, "a");
    st.revert_commit = Some("r".into());
    step(&mut st, &w, Some(&head("r")), &c, 1070);
    assert_eq!(revs(&st), [s("r"), s("r"), s("a")], "both waves holding b");
}

#[test]
fn a_newer_commit_supersedes_and_waves_skip_the_older_one() {
    let (mut st, w, c) = (State::default(), World::default(), Control::default());
    let (a, b, d) = (head("a"), head("b"), head("d"));
    for t in [0, 0, 60, 61, 700, 701] {
        step(&mut st, &w, Some(&a), &c, t);
        w.converge(&st);
    }
    step(&mut st, &w, Some(&b), &c, 1000);
    w.converge(&st);
    step(&mut st, &w, Some(&b), &c, 1010);
    step(&mut st, &w, Some(&d), &c, 1020);
    assert_eq!(revs(&st), [s("d"), s("a"), s("a")]);
    for t in [1020, 1021, 1081, 1082, 1700] {
        step(&mut st, &w, Some(&d), &c, t);
        w.converge(&st);
    }
    assert_eq!(revs(&st), [s("d"), s("d"), s("d")]);
    assert_eq!(st.waves[1].before, s("a"), "prod-eu went from a to d");
}

#[test]
fn pause_freezes_and_promote_skips_one_soak() {
    let (mut st, w) = (State::default(), World::default());
    let a = head("a");
    let paused = Control {
        paused: Some(Mark {
            who: "alice".into(),
            reason: "incident".into(),
            since: 5,
        }),
        promote: None,
    };
    let (r, _) = step(&mut st, &w, Some(&a), &paused, 0);
    assert_eq!(revs(&st), [None, None, None], "a new commit waits");
    assert!(r.paused.is_some());
    let c = Control::default();
    step(&mut st, &w, Some(&a), &c, 1);
    w.converge(&st);
    step(&mut st, &w, Some(&a), &c, 2);
    step(&mut st, &w, Some(&a), &paused, 100);
    assert_eq!(revs(&st), [s("a"), None, None], "paused: no wave moves");
    let promote = Control {
        paused: None,
        promote: Some(Promotion {
            wave: "prod-eu".into(),
            revision: "a".into(),
            who: "bob".into(),
            at: 5,
        }),
    };
    step(&mut st, &w, Some(&a), &c, 101);
    assert_eq!(revs(&st), [s("a"), s("a"), None]);
    w.converge(&st);
    step(&mut st, &w, Some(&a), &promote, 102);
    step(&mut st, &w, Some(&a), &promote, 103);
    assert_eq!(
        revs(&st),
        [s("a"), s("a"), s("a")],
        "prod-eu's soak skipped"
    );
}

#[test]
fn a_broken_plumb_yaml_fails_the_first_wave() {
    let (mut st, w, c) = (State::default(), World::default(), Control::default());
    let ws = waves();
    let apps = |_: &str| Vec::new();
    let look = |c: &str, _: &str| w.apps.borrow().get(c).cloned();
    let b = head("b");
    let (r, revert) = st.step(&Input {
        waves: &ws,
        auto_revert: true,
        head: Some(&b),
        config_error: Some("plumb.yaml:3:1: apps: bad"),
        apps: &apps,
        look: &look,
        control: &c,
        now: 0,
    });
    assert_eq!(r.waves[0].phase, "halted");
    assert!(
        revert.is_none(),
        "canary ran nothing before: nothing to revert to"
    );
    assert!(
        st.problem
            .as_deref()
            .unwrap()
            .contains("ran no earlier revision")
    );
}

#[test]
fn the_state_survives_a_json_round_trip() {
    let (mut st, w, c) = (State::default(), World::default(), Control::default());
    step(&mut st, &w, Some(&head("a")), &c, 0);
    let text = serde_json::to_string(&st).unwrap();
    let back: State = serde_json::from_str(&text).unwrap();
    assert_eq!(back, st);
}

#[test]
fn plumbs_own_revert_failing_is_never_reverted() {
    let (mut st, w, c) = (State::default(), World::default(), Control::default());
    let (a, b, r) = (head("a"), head("b"), head("r"));
    for t in [0, 0, 60, 61, 700, 701] {
        step(&mut st, &w, Some(&a), &c, t);
        w.converge(&st);
    }
    step(&mut st, &w, Some(&b), &c, 1000);
    w.set("stage", "b", SyncState::Failed, HealthState::Healthy);
    let (_, revert) = step(&mut st, &w, Some(&b), &c, 1001);
    assert!(revert.is_some());
    st.revert_commit = Some("r".into());
    step(&mut st, &w, Some(&r), &c, 1002);
    w.set("stage", "r", SyncState::Synced, HealthState::Degraded);
    let (rep, revert) = step(&mut st, &w, Some(&r), &c, 1003);
    assert!(
        revert.is_none(),
        "a revert of the revert would bring b back"
    );
    assert_eq!(rep.waves[0].phase, "halted");
    assert!(st.problem.as_deref().unwrap().contains("own revert"));
}
