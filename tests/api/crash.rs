//! Crash safety of the audit trail with the real binary: clients stream requests, the gateway
//! is killed with SIGKILL, restarted on the same data directory, and every request that got an
//! answer must have its event, in a chain that still verifies. Also drives `keystile audit`.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const ADMIN_TOKEN: &str = "crash-test-admin-token-0123456789abcdef";

/// Starts the binary on `data_dir` and waits until it answers `/health`.
async fn start(data_dir: &Path, http: &reqwest::Client) -> (Gateway, String) {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .env("KEYSTILE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("KEYSTILE_MASTER_KEY")
        .env_remove("KEYSTILE_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gateway = Gateway(child);
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{url}/health")).send().await
            && r.status() == 200
        {
            return (gateway, url);
        }
        assert!(started.elapsed() < Duration::from_secs(30), "gateway became healthy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn cli(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("KEYSTILE_URL", url)
        .env("KEYSTILE_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap()
}

async fn all_proxy_paths(http: &reqwest::Client, url: &str) -> HashSet<String> {
    let mut paths = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page: Value = http
            .get(format!("{url}/v1/audit?action=proxy.request&limit=1000{cursor}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for e in page["events"].as_array().unwrap() {
            assert_eq!(e["outcome"], "ok", "{e}");
            paths.insert(e["target_path"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return paths,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_kill_9_every_answered_request_has_its_event_and_the_chain_verifies() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (mut gateway, url) = start(&data_dir, &http).await;
    let created = http
        .post(format!("{url}/v1/credentials"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&local_credential(
            "echo",
            "api_key",
            json!({"key": "sk-crash-0123456789"}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // Clients stream requests until the gateway dies; a request counts as answered as soon as
    // its status line arrived.
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..6 {
        let (http, url, target, answered) = (http.clone(), url.clone(), upstream.url(), answered.clone());
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let path = format!("/crash/{client}-{i}");
                let sent = http
                    .get(format!("{url}/{target}{path}"))
                    .bearer_auth(ADMIN_TOKEN)
                    .header("x-keystile-credential", "echo")
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => answered.lock().unwrap().push(path),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return,
                }
            }
        }));
    }
    let waiting = Instant::now();
    while answered.lock().unwrap().len() < 200 {
        assert!(waiting.elapsed() < Duration::from_secs(60), "clients make progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gateway.0.kill().unwrap(); // SIGKILL: no shutdown, no flush
    gateway.0.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    println!("{} requests answered before the kill", answered.len());

    let (_gateway, url) = start(&data_dir, &http).await;
    let recorded = all_proxy_paths(&http, &url).await;
    let missing: Vec<&String> = answered.iter().filter(|p| !recorded.contains(*p)).collect();
    assert!(missing.is_empty(), "answered without an event: {missing:?}");
    let verified: Value = http
        .get(format!("{url}/v1/audit/verify"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(verified["events"].as_u64().unwrap() > answered.len() as u64);

    // The command line reads the same trail.
    let out = cli(&url, &["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["ok"], true);
    let out = cli(
        &url,
        &[
            "audit",
            "tail",
            "-n",
            "3",
            "--action",
            "proxy.request",
            "--mode",
            "path",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["seq"].as_i64() < lines[2]["seq"].as_i64(), "oldest first");

    // `--follow` prints the latest event, then each new one as it is written.
    let mut follower = Gateway(
        Command::new(BIN)
            .args([
                "audit",
                "tail",
                "--follow",
                "-n",
                "1",
                "--action",
                "proxy.request",
                "--interval-ms",
                "50",
            ])
            .env("KEYSTILE_URL", &url)
            .env("KEYSTILE_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = follower.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let first: Value = serde_json::from_str(&rx.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(first["seq"], lines[2]["seq"]);
    let resp = http
        .get(format!("{url}/{}/after-restart?k=v", upstream.url()))
        .bearer_auth(ADMIN_TOKEN)
        .header("x-keystile-credential", "echo")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let next: Value = serde_json::from_str(&rx.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(next["target_path"], "/after-restart?k=_");
}
