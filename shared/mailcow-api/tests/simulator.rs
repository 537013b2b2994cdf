//! The simulator answers raw HTTP the way Mailcow's `json_api.php` does (research notes §1).
//!
//! These pin the behaviour the client tests rely on, so a simulator that drifted from Mailcow
//! cannot make the client tests pass for the wrong reason.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failure, failing the test")]

use serde_json::{Value, json};
use simulators::mailcow::{DENYLIST_MAP, MailcowSimConfig, MailcowSimHandle, spawn};

async fn sim() -> MailcowSimHandle {
    spawn(MailcowSimConfig::default()).await.unwrap()
}

fn rw() -> String {
    MailcowSimConfig::default().rw_key
}

fn ro() -> String {
    MailcowSimConfig::default().ro_key.unwrap()
}

async fn call(
    sim: &MailcowSimHandle,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", sim.base_url));
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

const GET: reqwest::Method = reqwest::Method::GET;
const POST: reqwest::Method = reqwest::Method::POST;

#[tokio::test]
async fn requests_without_a_key_get_mailcows_unauthenticated_answers() {
    let sim = sim().await;
    let (status, body) = call(&sim, GET, "/api/v1/get/rsetting/all", None, None).await;
    assert_eq!((status, body.as_str()), (200, ""));
    let edit = json!({"items": [DENYLIST_MAP], "attr": {"rspamd_map_data": "/^a@b$/i"}});
    let (status, body) = call(&sim, POST, "/api/v1/edit/rspamd-map", None, Some(edit)).await;
    assert_eq!(status, 403);
    assert_eq!(parsed(&body), json!({"type": "error", "msg": "API read/write access denied"}));
    let add = json!({"desc": "d", "content": "priority = 20;", "active": 1});
    let (status, body) = call(&sim, POST, "/api/v1/add/rsetting", None, Some(add)).await;
    assert_eq!(status, 200);
    assert_eq!(parsed(&body)[0]["msg"], "access_denied");
    assert!(sim.state.rsettings().is_empty());
    assert_eq!(sim.state.denylist_map(), "");
}

#[tokio::test]
async fn unknown_keys_are_401_and_ten_failures_get_the_caller_banned() {
    let sim = sim().await;
    for _ in 0..9 {
        let (status, body) = call(&sim, GET, "/api/v1/get/rsetting/all", Some("NOPE"), None).await;
        assert_eq!(status, 401);
        assert_eq!(parsed(&body), json!({"type": "error", "msg": "authentication failed"}));
    }
    assert!(!sim.state.is_banned());
    call(&sim, GET, "/api/v1/get/rsetting/all", Some("NOPE"), None).await;
    assert!(sim.state.is_banned());
    let banned = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap()
        .get(format!("{}/api/v1/get/rsetting/all", sim.base_url))
        .header("X-API-Key", rw())
        .send()
        .await
        .unwrap_err();
    assert!(banned.is_timeout());
    sim.state.unban();
    let (status, _) = call(&sim, GET, "/api/v1/get/rsetting/all", Some(&rw()), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn key_characters_mailcow_strips_are_ignored() {
    let sim = sim().await;
    let decorated = format!(" {}_!", rw());
    let (status, body) = call(&sim, GET, "/api/v1/get/rsetting/all", Some(&decorated), None).await;
    assert_eq!((status, body.as_str()), (200, "{}"));
}

#[tokio::test]
async fn a_read_only_key_reads_but_cannot_write() {
    let sim = sim().await;
    let (status, _) = call(&sim, GET, "/api/v1/get/rsetting/all", Some(&ro()), None).await;
    assert_eq!(status, 200);
    for (path, body) in [
        ("/api/v1/edit/rspamd-map", json!({"items": [DENYLIST_MAP], "attr": {}})),
        ("/api/v1/add/rsetting", json!({"desc": "d", "content": "c", "active": 1})),
        ("/api/v1/delete/rsetting", json!(["1"])),
    ] {
        let (status, reply) = call(&sim, POST, path, Some(&ro()), Some(body)).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(parsed(&reply)["msg"], "API read/write access denied");
    }
}

#[tokio::test]
async fn map_edits_replace_the_whole_file_and_an_omitted_field_empties_it() {
    let sim = sim().await;
    let key = rw();
    let edit = |data: Option<&str>| {
        let attr = data.map_or_else(|| json!({}), |d| json!({"rspamd_map_data": d}));
        json!({"items": DENYLIST_MAP, "attr": attr})
    };
    let (status, body) = call(
        &sim,
        POST,
        "/api/v1/edit/rspamd-map",
        Some(&key),
        Some(edit(Some("\n/^a@b\\.c$/i  \n"))),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(parsed(&body)[0]["msg"], json!(["object_modified", DENYLIST_MAP]));
    assert_eq!(sim.state.denylist_map(), "/^a@b\\.c$/i\n");
    assert!(sim.state.would_reject("A@B.C"));
    call(&sim, POST, "/api/v1/edit/rspamd-map", Some(&key), Some(edit(None))).await;
    assert_eq!(sim.state.denylist_map(), "\n");
    assert!(!sim.state.would_reject("a@b.c"));
    assert_eq!(sim.state.map_writes().last().unwrap().data, None);
}

#[tokio::test]
async fn unknown_maps_routes_methods_and_bodies_get_mailcows_errors() {
    let sim = sim().await;
    let key = rw();
    let bad_map = json!({"items": ["nope.map"], "attr": {"rspamd_map_data": ""}});
    let (status, body) =
        call(&sim, POST, "/api/v1/edit/rspamd-map", Some(&key), Some(bad_map)).await;
    assert_eq!(status, 200);
    assert_eq!(parsed(&body)[0]["type"], "danger");
    assert_eq!(parsed(&body)[0]["msg"], json!(["global_map_invalid", "nope.map"]));

    let (status, body) =
        call(&sim, POST, "/api/v1/edit/nothing", Some(&key), Some(json!({}))).await;
    assert_eq!((status, parsed(&body)["msg"].clone()), (404, json!("route not found")));

    let (status, body) = call(&sim, GET, "/api/v1/edit/rspamd-map", Some(&key), None).await;
    assert_eq!(status, 200, "no JSON body: Mailcow stops at the missing attributes");
    assert_eq!(parsed(&body)["msg"], "Cannot find attributes in post data");

    let (status, body) = call(&sim, POST, "/api/v1/get/rsetting/all", Some(&key), None).await;
    assert_eq!((status, parsed(&body)["msg"].clone()), (405, json!("only GET method is allowed")));

    let raw = reqwest::Client::new()
        .post(format!("{}/api/v1/edit/rspamd-map", sim.base_url))
        .header("X-API-Key", &key)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
}

#[tokio::test]
async fn every_add_inserts_a_new_rule_and_returns_no_id() {
    let sim = sim().await;
    let add = json!({"desc": "mine", "content": "priority = 20;", "active": 1});
    for _ in 0..2 {
        let (status, body) =
            call(&sim, POST, "/api/v1/add/rsetting", Some(&rw()), Some(add.clone())).await;
        assert_eq!(status, 200);
        let reply = parsed(&body);
        assert_eq!(reply[0]["msg"], "settings_map_added");
        assert!(reply[0].get("id").is_none());
    }
    assert_eq!(sim.state.rsettings().len(), 2);
    let (_, body) = call(&sim, GET, "/api/v1/get/rsetting/all", Some(&rw()), None).await;
    assert_eq!(parsed(&body).as_array().unwrap().len(), 2);
    let empty = json!({"desc": "mine", "content": "", "active": 1});
    let (_, body) = call(&sim, POST, "/api/v1/add/rsetting", Some(&rw()), Some(empty)).await;
    assert_eq!(parsed(&body)[0]["msg"], "map_content_empty");
}

#[tokio::test]
async fn a_broken_rule_keeps_the_previous_settings_loaded() {
    let sim = sim().await;
    let good = "priority = 20;\nrcpt = \"a@b.org\";\n\
                apply \"default\" {\n  MAILCOW_BLACK = 9999.0;\n}\n\
                symbols [\n  \"MAILCOW_BLACK\"\n]";
    let id = sim.state.insert_rsetting("mine", good, true);
    assert!(sim.state.would_reject("a@b.org"));
    let broken = json!({"items": [id.to_string()], "attr": {"content": "rcpt = \"x\"y\";"}});
    call(&sim, POST, "/api/v1/edit/rsetting", Some(&rw()), Some(broken)).await;
    assert!(sim.state.settings_error().is_some());
    assert!(sim.state.would_reject("a@b.org"), "Rspamd keeps the last map that loaded");
}

#[tokio::test]
async fn faults_and_verdicts_are_reachable_over_http_for_the_demo() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let armed = http
        .post(format!("{}/sim/fault", sim.base_url))
        .json(&json!({"fault": "server_error", "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(armed.status().as_u16(), 204);
    let (status, _) = call(&sim, GET, "/api/v1/get/rsetting/all", Some(&rw()), None).await;
    assert_eq!(status, 500);
    let (status, _) = call(&sim, GET, "/api/v1/get/rsetting/all", Some(&rw()), None).await;
    assert_eq!(status, 200);

    let edit = json!({"items": [DENYLIST_MAP], "attr": {"rspamd_map_data": "/^x@y\\.org$/i"}});
    call(&sim, POST, "/api/v1/edit/rspamd-map", Some(&rw()), Some(edit)).await;
    let verdict: Value = http
        .get(format!("{}/sim/would-reject?rcpt=X%40Y.org", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verdict, json!({"reject": true, "map": true, "settings": false}));
    let state: Value =
        http.get(format!("{}/sim/state", sim.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["requests"]["POST /api/v1/edit/rspamd-map"], 1);
}
