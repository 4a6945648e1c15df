//! Service registry and discovery: instances register, clients pick one
//! round-robin or at random, a crashed instance drops out; a naming
//! service keeps a stable name while the address behind it moves.

use innkeeper::recipes::{
    GroupMember, NameService, PickStrategy, ServiceDiscovery, ServiceInstance, ServiceRegistry,
};

use crate::stage::{Stage, SOON};

pub fn run(stage: &Stage) -> innkeeper::Result<()> {
    stage.title("Service discovery, group membership, naming");
    let mut sessions = Vec::new();
    let mut registrations = Vec::new();
    for (i, name) in ["orders-1", "orders-2", "orders-3"].into_iter().enumerate() {
        let session = stage.join(name);
        let registry = ServiceRegistry::new(session.clone(), "/services")?;
        let instance = ServiceInstance::new("orders", name, &format!("10.0.1.{}", i + 1), 8080)
            .with_payload(format!("zone=eu-{}", i % 2));
        registrations.push(registry.register(&instance)?);
        stage.say(name, format!("registers at {}", instance.endpoint()));
        sessions.push(session);
    }
    let discovery = ServiceDiscovery::new(stage.join("gateway"), "/services")?;
    let round_robin = discovery.provider("orders", PickStrategy::RoundRobin)?;
    let random = discovery.provider("orders", PickStrategy::Random)?;
    let picks: Vec<String> = (0..4)
        .filter_map(|_| round_robin.instance())
        .map(|i| i.id)
        .collect();
    stage.say("gateway", format!("round robin: {}", picks.join(", ")));
    let picks: Vec<String> = (0..4)
        .filter_map(|_| random.instance())
        .map(|i| i.id)
        .collect();
    stage.say("gateway", format!("random:      {}", picks.join(", ")));
    stage.crash("orders-2", &sessions[1]);
    round_robin.wait_for(SOON, |live| live.len() == 2);
    let picks: Vec<String> = (0..4)
        .filter_map(|_| round_robin.instance())
        .map(|i| i.id)
        .collect();
    stage.say("gateway", format!("after the crash: {}", picks.join(", ")));
    drop(registrations);

    let _ann = GroupMember::join(stage.join("ann"), "/party/standup", "ann", b"here")?;
    let bob = GroupMember::join(stage.join("bob"), "/party/standup", "bob", b"here")?;
    stage.say(
        "standup",
        format!("members: {:?}", bob.members()?.keys().collect::<Vec<_>>()),
    );
    bob.leave()?;
    stage.say("bob", "leaves the group");

    let names = NameService::new(stage.join("dns-admin"), "/names")?;
    names.bind("db-primary", "10.0.2.5:5432")?;
    let app = NameService::new(stage.join("app"), "/names")?.follow("db-primary")?;
    stage.say(
        "app",
        format!("db-primary is {}", app.address().unwrap_or_default()),
    );
    names.bind("db-primary", "10.0.2.6:5432")?;
    stage.say(
        "dns-admin",
        "fails the database over: db-primary → 10.0.2.6:5432",
    );
    app.wait_for(SOON, |a| a == Some("10.0.2.6:5432"));
    stage.say(
        "app",
        format!(
            "follows the name: db-primary is {}",
            app.address().unwrap_or_default()
        ),
    );
    stage.say(
        "dns-admin",
        format!(
            "allocates unique names: {}, {}",
            names.allocate("job-")?,
            names.allocate("job-")?
        ),
    );
    Ok(())
}
