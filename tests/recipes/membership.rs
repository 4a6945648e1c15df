//! Group membership, service registry and discovery, naming service.

use std::collections::BTreeSet;

use innkeeper::recipes::{
    members_of, CacheEvent, GroupMember, NameService, PickStrategy, ServiceDiscovery,
    ServiceInstance, ServiceRegistry, TreeCache,
};
use innkeeper::ErrorKind;

use crate::common::{TestSession, World, PROMPTLY};

// Checks membership: members list each other; an id in use is refused; a
// member whose session expires drops out and a children cache reports
// it removed; after everyone leaves the group's container is reaped.
#[test]
fn group_tracks_live_members() {
    let world = World::new();
    let doomed = world.session();
    let ann = GroupMember::join(world.session(), "/g/team", "ann", b"a").expect("join");
    let bob = GroupMember::join(doomed.clone(), "/g/team", "bob", b"b").expect("join");
    assert_eq!(
        GroupMember::join(world.session(), "/g/team", "bob", b"again")
            .map(|_| ())
            .map_err(|e| e.kind()),
        Err(ErrorKind::NodeExists)
    );
    let watcher = TreeCache::children(world.session(), "/g/team").expect("cache");
    let (tx, rx) = crossbeam_channel::unbounded();
    watcher.on_change(move |e| {
        let _ = tx.send(e.clone());
    });
    bob.update(b"b2").expect("update");
    assert!(matches!(rx.recv_timeout(PROMPTLY), Ok(CacheEvent::Updated(n)) if n.data == b"b2"));
    world.hang_until_expired(&doomed);
    assert!(
        matches!(rx.recv_timeout(PROMPTLY), Ok(CacheEvent::Removed(n)) if n.path == "/g/team/bob")
    );
    assert_eq!(
        ann.members().expect("members").keys().collect::<Vec<_>>(),
        ["ann"]
    );
    drop(bob);
    ann.leave().expect("leave");
    assert!(members_of(&*world.session(), "/g/team")
        .expect("members")
        .is_empty());
    drop(watcher);
    assert!(world.reaped("/g/team"));
}

// Checks discovery: round robin visits every live instance in turn,
// random picks stay within the live set and cover it, and an instance
// whose process dies (session expiry) leaves the provider's view and is
// never picked again; the change listener hears of it.
#[test]
fn discovery_picks_live_instances() {
    let world = World::new();
    let registry_sessions: Vec<_> = (0..3).map(|_| world.session()).collect();
    let registrations: Vec<_> = registry_sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            ServiceRegistry::new(s.clone(), "/services")
                .expect("registry")
                .register(
                    &ServiceInstance::new("api", &format!("api-{i}"), &format!("10.0.0.{i}"), 8080)
                        .with_payload(format!("zone-{}", i % 2)),
                )
                .expect("register")
        })
        .collect();
    let discovery = ServiceDiscovery::new(world.session(), "/services").expect("discovery");
    assert_eq!(discovery.names().expect("names"), ["api"]);
    assert_eq!(
        discovery.instances("api").expect("instances")[2].payload,
        b"zone-0"
    );
    let rr = discovery
        .provider("api", PickStrategy::RoundRobin)
        .expect("provider");
    let picks: Vec<String> = (0..6).filter_map(|_| rr.instance()).map(|i| i.id).collect();
    assert_eq!(
        picks,
        ["api-0", "api-1", "api-2", "api-0", "api-1", "api-2"]
    );
    let random = discovery
        .provider("api", PickStrategy::Random)
        .expect("provider");
    let seen: BTreeSet<String> = (0..200)
        .filter_map(|_| random.instance())
        .map(|i| i.id)
        .collect();
    assert_eq!(seen.len(), 3, "random picks cover the live set");
    let (tx, rx) = crossbeam_channel::unbounded();
    rr.on_change(move |live| {
        let _ = tx.send(live.len());
    });
    world.hang_until_expired(&registry_sessions[1]);
    assert!(rr.wait_for(PROMPTLY, |live| live.len() == 2));
    assert_eq!(rx.recv_timeout(PROMPTLY).expect("listener"), 2);
    for _ in 0..10 {
        assert_ne!(rr.instance().expect("pick").id, "api-1");
    }
    assert!(random.wait_for(PROMPTLY, |live| live.len() == 2));
    drop(registrations);
    assert!(rr.wait_for(PROMPTLY, |live| live.is_empty()));
    assert_eq!(rr.instance(), None);
}

// Checks the naming service: a name keeps its identity while its address
// moves; a follower sees each rebinding; allocated names never repeat,
// even after the allocation directory has been idle through reaping.
#[test]
fn naming_rebinds_and_allocates_unique_names() {
    let world = World::new();
    let names = NameService::new(world.session(), "/names").expect("names");
    assert_eq!(names.resolve("db").expect("resolve"), None);
    names.bind("db", "10.0.0.5:5432").expect("bind");
    let follower = NameService::new(world.session(), "/names")
        .expect("names")
        .follow("db")
        .expect("follow");
    assert_eq!(follower.address().as_deref(), Some("10.0.0.5:5432"));
    names.bind("db", "10.0.0.6:5432").expect("rebind");
    assert!(follower.wait_for(PROMPTLY, |a| a == Some("10.0.0.6:5432")));
    assert!(names.unbind("db").expect("unbind"));
    assert!(follower.wait_for(PROMPTLY, |a| a.is_none()));
    assert!(names.names().expect("names").is_empty());
    let mut seen = BTreeSet::new();
    for round in 0..3 {
        for _ in 0..5 {
            assert!(
                seen.insert(names.allocate("job-").expect("allocate")),
                "round {round}"
            );
        }
        // In process the reaper runs here, which must not restart the
        // sequence. A real server's reaper runs on its own schedule (no
        // waiting for it here): there only uniqueness is checked.
        world.reap();
    }
    assert_eq!(
        names.bind("a/b", "x").map_err(|e| e.kind()),
        Err(ErrorKind::BadArguments)
    );
    names.bind("cache", "10.0.0.9:6379").expect("bind");
    assert_eq!(
        names.names().expect("names"),
        ["cache"],
        "bookkeeping is hidden"
    );
}

#[derive(Debug, Clone)]
enum MemberOp {
    Join(usize),
    Leave(usize),
    Expire(usize),
}

fn member_op() -> impl proptest::strategy::Strategy<Value = MemberOp> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0..4usize).prop_map(MemberOp::Join),
        2 => (0..4usize).prop_map(MemberOp::Leave),
        2 => (0..4usize).prop_map(MemberOp::Expire),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: crate::common::cases(48), ..Default::default() })]

    // Checks membership and discovery against a set model over random
    // joins, leaves and session expiries of four instances: after each
    // step the group listing equals the model, and a round-robin provider
    // converges to it and only ever picks live instances.
    #[test]
    fn membership_and_discovery_match_the_live_set(ops in proptest::collection::vec(member_op(), 1..30)) {
        let world = World::new();
        let mut sessions: Vec<_> = (0..4).map(|_| world.session()).collect();
        let mut registered: Vec<Option<innkeeper::recipes::Registration<TestSession>>> =
            (0..4).map(|_| None).collect();
        let discovery = ServiceDiscovery::new(world.session(), "/pm").expect("discovery");
        let provider = discovery.provider("svc", PickStrategy::RoundRobin).expect("provider");
        let mut live = BTreeSet::new();
        for op in ops {
            match op {
                MemberOp::Join(i) => {
                    if registered[i].is_none() {
                        let registry = ServiceRegistry::new(sessions[i].clone(), "/pm").expect("registry");
                        let instance = ServiceInstance::new("svc", &format!("i{i}"), "10.0.0.1", 80 + i as u16);
                        registered[i] = Some(registry.register(&instance).expect("register"));
                        live.insert(format!("i{i}"));
                    }
                }
                MemberOp::Leave(i) => {
                    if let Some(r) = registered[i].take() {
                        r.unregister().expect("unregister");
                        live.remove(&format!("i{i}"));
                    }
                }
                MemberOp::Expire(i) => {
                    world.expire(&sessions[i]);
                    sessions[i] = world.session();
                    registered[i] = None;
                    live.remove(&format!("i{i}"));
                }
            }
            let listed: BTreeSet<String> = members_of(&*world.session(), "/pm/svc").expect("members").into_keys().collect();
            proptest::prop_assert_eq!(&listed, &live);
            let converged = provider.wait_for(PROMPTLY, |now| {
                now.iter().map(|i| i.id.clone()).collect::<BTreeSet<_>>() == live
            });
            proptest::prop_assert!(converged);
            for _ in 0..live.len() {
                let pick = provider.instance().expect("a live instance");
                proptest::prop_assert!(live.contains(&pick.id));
            }
        }
    }
}
