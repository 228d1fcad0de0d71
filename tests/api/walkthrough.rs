//! The README's walk-through, step by step, with the real `keystile` binary: start the
//! gateway on the embedded default, add a credential from stdin with the CLI, create a scoped
//! role and key, and call an API through the gateway.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

/// Runs a CLI command against the gateway, feeding `stdin`, and parses its JSON output.
fn cli(url: &str, token: &str, args: &[&str], stdin: Option<&str>) -> Value {
    let mut child = Command::new(BIN)
        .args(args)
        .env("KEYSTILE_URL", url)
        .env("KEYSTILE_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_readme_walkthrough_works_with_the_real_binary() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path().join("keystile-data"))
        .env_remove("KEYSTILE_ADMIN_TOKEN")
        .env_remove("KEYSTILE_MASTER_KEY")
        .env_remove("KEYSTILE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let _gateway = Gateway(child);

    // The admin key is printed once, on stdout.
    let mut lines = BufReader::new(stdout).lines();
    let mut admin_key = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(k) = line.trim().strip_prefix("kst_") {
            admin_key = format!("kst_{k}");
            break;
        }
    }
    // Keep draining stdout so the gateway never writes into a closed pipe.
    let rest_of_stdout = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    assert!(admin_key.len() > 40, "admin key printed");
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    loop {
        if let Ok(r) = http.get(format!("{url}/health")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "gateway became healthy");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "cold start to healthy (debug build, incl. process spawn): {:?}",
        started.elapsed()
    );

    let created = cli(
        &url,
        &admin_key,
        &[
            "credential",
            "add",
            "echo",
            "--type",
            "api_key",
            "--host",
            "127.0.0.1",
            "--allow-http",
            "--allow-private-network",
            "127.0.0.1/32",
            "--from-file",
            "-",
        ],
        Some("sk-demo-123\n"),
    );
    assert_eq!(created["alias"], "echo");
    assert!(!created.to_string().contains("sk-demo-123"));
    let role = cli(
        &url,
        &admin_key,
        &["role", "create", "agent", "--permission", "execute", "--scope", "echo"],
        None,
    );
    let role_id = role["id"].as_str().unwrap();
    let key = cli(
        &url,
        &admin_key,
        &["key", "create", "agent-key", "--role", role_id],
        None,
    );
    let agent_key = key["key"].as_str().unwrap();
    let listed = cli(&url, &admin_key, &["credential", "list"], None);
    assert_eq!(listed["credentials"][0]["alias"], "echo");

    let resp = http
        .get(format!("{url}/{}/v1/hello", upstream.url()))
        .bearer_auth(agent_key)
        .header("x-keystile-credential", "echo")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = upstream.requests().pop().unwrap();
    assert_eq!(got.header("authorization").as_deref(), Some("Bearer sk-demo-123"));
    assert!(!got.everything().contains(agent_key));

    let revoke_id = key["id"].as_str().unwrap();
    cli(&url, &admin_key, &["key", "revoke", revoke_id], None);
    let after = http
        .get(format!("{url}/v1/credentials"))
        .bearer_auth(agent_key)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);

    drop(_gateway);
    let logs = std::io::read_to_string(stderr).unwrap();
    let stdout_rest = rest_of_stdout.join().unwrap();
    assert!(!stdout_rest.contains(&admin_key), "the admin key is printed once");
    assert!(!logs.contains(&admin_key), "the admin key is never logged");
    assert!(!logs.contains("sk-demo-123"));
    assert!(!logs.contains(agent_key));
}
