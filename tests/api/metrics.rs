//! `/metrics` and the `X-Keystile-Overhead-Ms` header.

use serde_json::json;

use crate::helpers::*;

fn overhead_ms(resp: &reqwest::Response) -> f64 {
    resp.headers()
        .get("x-keystile-overhead-ms")
        .expect("proxied response carries X-Keystile-Overhead-Ms")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn proxied_responses_carry_the_overhead_without_upstream_time() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("m", "api_key", json!({"key": "metrics-secret"})))
        .await;
    // The upstream sleeps 3 s before answering /slow: that time must not count as overhead.
    let resp = app
        .http
        .get(app.url(&format!("/{}/slow", upstream.url())))
        .bearer_auth(&app.admin_key)
        .header("x-keystile-credential", "m")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ms = overhead_ms(&resp);
    assert!(
        (0.0..2000.0).contains(&ms),
        "overhead {ms} ms includes the upstream's 3 s"
    );

    // Refusals before anything is sent carry it too; management calls do not.
    let denied = app
        .http
        .get(app.url("/https://elsewhere.example/x"))
        .bearer_auth(&app.admin_key)
        .header("x-keystile-credential", "m")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    assert!(overhead_ms(&denied) >= 0.0);
    let list = app
        .http
        .get(app.url("/v1/credentials"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert!(list.headers().get("x-keystile-overhead-ms").is_none());

    // Execute reports it as well.
    let exec = app
        .http
        .post(app.url("/v1/execute"))
        .bearer_auth(&app.admin_key)
        .json(&json!({"credential": "m", "action": "http.request",
            "params": {"method": "GET", "url": format!("{}/x", upstream.url())}}))
        .send()
        .await
        .unwrap();
    assert_eq!(exec.status(), 200);
    assert!(overhead_ms(&exec) >= 0.0);
}

#[tokio::test]
async fn metrics_count_requests_latency_and_refusals() {
    let app = spawn_app().await;
    let upstream = Upstream::start().await;
    app.create_credential(local_credential("m", "api_key", json!({"key": "metrics-secret"})))
        .await;
    let mut public_only = local_credential("public-only", "api_key", json!({"key": "p-secret"}));
    public_only["policy"]["allow_private_network"] = json!(false);
    app.create_credential(public_only).await;
    for _ in 0..3 {
        let a = app
            .proxy(&app.admin_key, "m", "GET", &format!("{}/x", upstream.url()))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    app.proxy(&app.admin_key, "public-only", "GET", &format!("{}/x", upstream.url()))
        .await
        .assert_error(403, "ssrf_blocked");
    app.call("GET", "/v1/credentials", Some("kst_not_a_real_key"), None)
        .await
        .assert_error(401, "unauthorized");

    let resp = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "no authentication needed");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("openmetrics-text"),
        "Prometheus/OpenMetrics content type"
    );
    let text = resp.text().await.unwrap();
    for line in [
        r#"keystile_http_requests_total{surface="path",status="200"} 3"#,
        r#"keystile_http_requests_total{surface="path",status="403"} 1"#,
        r#"keystile_http_requests_total{surface="management",status="401"} 1"#,
        r#"keystile_upstream_latency_seconds_count{surface="path"} 3"#,
        r#"keystile_gateway_overhead_seconds_count{surface="path"} 4"#,
        "keystile_ssrf_refusals_total 1",
        "keystile_audit_queue_depth 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    assert!(
        !text.contains("metrics-secret") && !text.contains("public-only"),
        "no tenant data in labels"
    );
}
