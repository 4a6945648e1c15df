//! Orders that ZooKeeper 3.8 takes from Java collections, checked against
//! answers recorded from Apache ZooKeeper 3.8.0 (`tests/data/zk38/`, made
//! by the scripts there).

use innkeeper::proto::{ClientInfo, Request, Response};
use serde_json::Value;

use crate::client::{server_on, Client};

fn recorded(name: &str) -> Value {
    let path = format!("{}/tests/data/zk38/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Replays each recorded session's digest authentications and compares the
/// whoAmI answer, order included (a `ConcurrentHashMap`-backed set).
fn check_who_am_i(file: &str) {
    let data = recorded(file);
    let mut builder = crate::client::keeper_builder();
    if let Some(credential) = data["super"].as_str() {
        let (user, password) = credential.split_once(':').unwrap();
        builder = builder.super_digest(innkeeper::digest_id(user, password));
    }
    let (_keeper, server) = server_on(builder.build().unwrap(), Default::default());
    for (n, case) in data["cases"].as_array().unwrap().iter().enumerate() {
        let mut c = Client::connect(server.local_addr());
        for credential in case["auths"].as_array().unwrap() {
            c.call(&Request::Auth {
                auth_type: 0,
                scheme: "digest".into(),
                auth: credential.as_str().unwrap().as_bytes().to_vec(),
            });
        }
        let Some(Response::WhoAmI { client_info }) = c.call(&Request::WhoAmI).1 else {
            panic!("whoAmI answered");
        };
        let got: Vec<(String, String)> = client_info
            .into_iter()
            .map(|ClientInfo { auth_scheme, user }| (auth_scheme, user))
            .collect();
        let want: Vec<(String, String)> = case["whoami"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap().to_string(),
                    pair[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "{file} case {n}: {}", case["auths"]);
    }
}

#[test]
fn who_am_i_answers_in_zookeepers_order() {
    check_who_am_i("whoami-plain.json");
}

#[test]
fn who_am_i_answers_in_zookeepers_order_with_super() {
    check_who_am_i("whoami-super.json");
}

/// Replays recorded create/delete mixes and compares every getChildren
/// answer with ZooKeeper's, order included (a `HashSet<String>` made with
/// capacity 8 that grows and never shrinks). getChildren2 answers the same.
#[test]
fn get_children_answers_in_zookeepers_order() {
    use innkeeper::proto::{CreateKind, DeleteRequest, GetChildrenRequest};
    let data = recorded("children.json");
    let (_keeper, server) = crate::client::server();
    let mut c = Client::connect(server.local_addr());
    let mut lists = 0;
    for (n, case) in data["cases"].as_array().unwrap().iter().enumerate() {
        let parent = format!("/kids-{n}");
        assert_eq!(
            c.err(&crate::wire::create(CreateKind::Create, &parent, None, 0)),
            0
        );
        for step in case["steps"].as_array().unwrap() {
            let child = |v: &Value| format!("{parent}/{}", v.as_str().unwrap());
            match step[0].as_str().unwrap() {
                "create" => {
                    let request =
                        crate::wire::create(CreateKind::Create, &child(&step[1]), None, 0);
                    assert_eq!(c.err(&request), 0, "{step}");
                }
                "delete" => {
                    let request = Request::Delete(DeleteRequest {
                        path: child(&step[1]),
                        version: -1,
                    });
                    assert_eq!(c.err(&request), 0, "{step}");
                }
                _ => {
                    let want: Vec<&str> = step[1]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect();
                    let get = GetChildrenRequest {
                        path: parent.clone(),
                        watch: false,
                    };
                    let Some(Response::GetChildren { children }) =
                        c.call(&Request::GetChildren(get.clone())).1
                    else {
                        panic!("getChildren answered");
                    };
                    assert_eq!(children, want, "case {n}");
                    let Some(Response::GetChildren2 { children, .. }) =
                        c.call(&Request::GetChildren2(get)).1
                    else {
                        panic!("getChildren2 answered");
                    };
                    assert_eq!(children, want, "case {n}");
                    lists += 1;
                }
            }
        }
    }
    assert!(lists > 100, "{lists} listings compared");
}
