//! The Keystile side of a run: keys, the benchmark credential and route, the scale run, the
//! soak and the callgrind instruction count.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use keystile::crypto::MasterKey;
use rand::RngCore as _;

use crate::load::{self, Target};
use crate::procs::{self, KeystileSpec, Proc};
use crate::report::{DiskSync, PathResult, Scale, Soak};

/// A master key, as the environment variable carries it and as the seeder uses it.
pub struct Master(pub String, pub MasterKey);

/// A fresh random master key.
pub fn master_key() -> Master {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    // 32 random bytes always decode as a master key.
    let key = MasterKey::from_base64(&b64).unwrap_or_else(|_| MasterKey::generate());
    Master(b64, key)
}

/// A random admin token (`KEYSTILE_ADMIN_TOKEN`) for this run only.
pub fn admin_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!(
        "kst_bench_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// The injected secret: long enough to be redacted, recognisable in the upstream's logs.
const SECRET: &str = "sk_bench_0123456789abcdef0123456789abcdef";

fn bearer(admin: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    Ok((
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {admin}"))?,
    ))
}

async fn post_json(addr: SocketAddr, admin: &str, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (name, value) = bearer(admin)?;
    let req = Request::post(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(name, value)
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = sender.send_request(req).await?;
    let status = response.status();
    let text = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "POST {path}: {status} {}",
        String::from_utf8_lossy(&text)
    );
    Ok(())
}

/// The floor S11 puts under every response: appends of one audit line (300 bytes) to a file
/// in the benchmark's working directory (the same disk as Keystile's data directory), each
/// followed by `fdatasync`, as the audit journal does for a lone request.
pub fn disk_sync_floor(work: &Path) -> anyhow::Result<DiskSync> {
    use std::io::Write as _;
    const SYNCS: usize = 500;
    let path = work.join("sync-floor.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let line = [b'x'; 300];
    let mut times = Vec::with_capacity(SYNCS);
    for _ in 0..SYNCS {
        let started = Instant::now();
        file.write_all(&line)?;
        file.sync_data()?;
        times.push(started.elapsed());
    }
    std::fs::remove_file(&path)?;
    times.sort();
    let us = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
    Ok(DiskSync {
        syncs: SYNCS,
        p50_us: us(times[SYNCS / 2]),
        p99_us: us(times[SYNCS * 99 / 100]),
    })
}

/// Creates the `bench` api_key credential (injected as `Authorization: Bearer …`, allowed to
/// reach the loopback upstream over http) and the `bench` route to the upstream.
pub async fn credential_and_route(ks: SocketAddr, admin: &str, upstream: SocketAddr) -> anyhow::Result<()> {
    let credential = serde_json::json!({
        "alias": "bench",
        "type": "api_key",
        "data": {"key": SECRET},
        "policy": {
            "allowed_hosts": ["127.0.0.1"],
            "allow_http": true,
            "allow_private_network": true,
        },
    });
    post_json(ks, admin, "/v1/credentials", credential).await?;
    let route = serde_json::json!({
        "name": "bench",
        "base_url": format!("http://{upstream}"),
        "credential": "bench",
    });
    post_json(ks, admin, "/v1/routes", route).await
}

/// The path proxy: `GET /http://upstream/json` with `X-Keystile-Credential: bench`.
pub fn path_target(ks: SocketAddr, admin: &str, upstream: SocketAddr, path: &str) -> anyhow::Result<Target> {
    Ok(Target {
        name: "keystile-path",
        addr: ks,
        path: format!("/http://{upstream}{path}"),
        headers: vec![
            bearer(admin)?,
            (
                HeaderName::from_static("x-keystile-credential"),
                HeaderValue::from_static("bench"),
            ),
        ],
    })
}

/// The route: `GET /r/bench/json`.
pub fn route_target(ks: SocketAddr, admin: &str, path: &str) -> anyhow::Result<Target> {
    Ok(Target {
        name: "keystile-route",
        addr: ks,
        path: format!("/r/bench{path}"),
        headers: vec![bearer(admin)?],
    })
}

/// Seeds 100 000 credentials and 100 000 keys, starts Keystile on them (timing start-up),
/// and measures both Keystile paths again. Returns the results and the start-up time (ms).
#[allow(clippy::too_many_arguments)]
pub async fn scale_run(
    binary: &Path,
    work: &Path,
    master: &Master,
    admin: &str,
    upstream: SocketAddr,
    levels: &[usize],
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<(Scale, f64)> {
    const N: usize = 100_000;
    let dir = work.join("scale");
    eprintln!("seeding {N} credentials and {N} API keys…");
    let took = crate::seed::seed(&dir, &master.1, N, N).await?;
    eprintln!("seeded in {:.1} s", took.as_secs_f64());
    let spec = KeystileSpec {
        binary,
        data_dir: &dir,
        master_key_b64: &master.0,
        admin_token: admin,
        wrapper: &[],
        env: &[],
    };
    let (ks, addr, ready) = procs::start_keystile(&spec, Duration::from_secs(60)).await?;
    credential_and_route(addr, admin, upstream).await?;
    let mut paths: Vec<PathResult> = Vec::new();
    for target in [
        path_target(addr, admin, upstream, "/json")?,
        route_target(addr, admin, "/json")?,
    ] {
        paths.push(crate::measure_path(&target, Some(&ks), levels, warmup, measure).await?);
    }
    Proc::stop(ks, Duration::from_secs(5));
    Ok((
        Scale {
            credentials: N,
            keys: N,
            seed_seconds: took.as_secs_f64(),
            paths,
        },
        ready.as_secs_f64() * 1000.0,
    ))
}

/// Ten minutes at 16 connections on the path proxy, RSS sampled every 10 s.
pub async fn soak(
    binary: &Path,
    work: &Path,
    master: &Master,
    admin: &str,
    upstream: SocketAddr,
) -> anyhow::Result<Soak> {
    const SECONDS: u64 = 600;
    const CONCURRENCY: usize = 16;
    let spec = KeystileSpec {
        binary,
        data_dir: &work.join("soak"),
        master_key_b64: &master.0,
        admin_token: admin,
        wrapper: &[],
        env: &[],
    };
    let (ks, addr, _) = procs::start_keystile(&spec, Duration::from_secs(30)).await?;
    credential_and_route(addr, admin, upstream).await?;
    let target = path_target(addr, admin, upstream, "/json")?;
    eprintln!("soak: {SECONDS} s at {CONCURRENCY} connections…");
    let started = Instant::now();
    let load = load::run(&target, CONCURRENCY, Duration::ZERO, Duration::from_secs(SECONDS));
    tokio::pin!(load);
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let level = loop {
        tokio::select! {
            done = &mut load => break done?,
            _ = tick.tick() => samples.push((started.elapsed().as_secs(), ks.rss_kib())),
        }
    };
    samples.push((started.elapsed().as_secs(), ks.rss_kib()));
    Proc::stop(ks, Duration::from_secs(5));
    let after_minute = samples.iter().find(|(t, _)| *t >= 60).map_or(0, |(_, r)| *r);
    let last = samples.last().map_or(0, |(_, r)| *r);
    Ok(Soak {
        seconds: SECONDS,
        concurrency: CONCURRENCY,
        requests: level.requests,
        errors: level.errors,
        rss_samples: samples,
        growth_after_first_minute_kib: i64::try_from(last).unwrap_or(i64::MAX)
            - i64::try_from(after_minute).unwrap_or(i64::MAX),
    })
}

/// Instructions per proxied request, for the path proxy and the route: Keystile runs under
/// `valgrind --tool=callgrind` twice per surface, with a few and with many requests after the
/// same warm-up; the difference of the totals divided by the difference of the counts removes
/// start-up, set-up and shutdown from the figure. The profiles are left in the working
/// directory as `callgrind.<surface>.<requests>.out`.
pub async fn callgrind(binary: &Path, work: &Path, upstream: SocketAddr) -> anyhow::Result<()> {
    const FEW: usize = 200;
    const MANY: usize = 1200;
    let master = master_key();
    let admin = admin_token();
    for surface in ["keystile-path", "keystile-route"] {
        let mut totals = Vec::new();
        for (i, n) in [FEW, MANY].into_iter().enumerate() {
            let dir = work.join(format!("cg-{surface}-{i}"));
            std::fs::create_dir_all(&dir)?;
            let out = dir.join("callgrind.out");
            let wrapper = vec![
                "valgrind".to_owned(),
                "--tool=callgrind".to_owned(),
                format!("--callgrind-out-file={}", out.display()),
            ];
            let spec = KeystileSpec {
                binary,
                data_dir: &dir.join("data"),
                master_key_b64: &master.0,
                admin_token: &admin,
                wrapper: &wrapper,
                env: &[],
            };
            let (ks, addr, _) = procs::start_keystile(&spec, Duration::from_secs(120)).await?;
            credential_and_route(addr, &admin, upstream).await?;
            let target = if surface == "keystile-path" {
                path_target(addr, &admin, upstream, "/json")?
            } else {
                route_target(addr, &admin, "/json")?
            };
            {
                let mut conn = load::connect(addr).await?;
                for _ in 0..100 + n {
                    let status = load::once(&mut conn, &target).await?;
                    anyhow::ensure!(status == 200, "{surface}: status {status}");
                }
            }
            Proc::stop(ks, Duration::from_secs(60));
            totals.push(callgrind_total(&out)?);
            // Kept in the working directory for `callgrind_annotate`.
            std::fs::copy(&out, format!("callgrind.{surface}.{n}.out"))?;
        }
        let per_request = (totals[1] - totals[0]) as f64 / (MANY - FEW) as f64;
        println!("{surface}: {per_request:.0} instructions per request (totals {totals:?} for {FEW}/{MANY} requests)");
    }
    Ok(())
}

fn callgrind_total(path: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no totals in the callgrind output")
}
