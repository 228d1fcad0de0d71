//! The one load generator used for every path: a fixed number of keep-alive HTTP/1.1
//! connections, each sending the next request as soon as the previous answer is read in full,
//! for a fixed time after a warm-up. Every latency is kept (microseconds) and sorted at the end,
//! so percentiles are exact rather than bucketed; at a few tens of thousands of requests per
//! second for a few seconds that is a few hundred kilobytes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::Serialize;

/// Where and what to request.
#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// Origin-form request target, e.g. `/json` or `/http://127.0.0.1:1234/json`.
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// What one concurrency level measured.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_us: u32,
    pub p90_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    /// CPU seconds the proxy used per 10 000 requests (none for the direct path).
    pub cpu_s_per_10k: Option<f64>,
}

/// Opens one keep-alive connection.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn request(target: &Target) -> anyhow::Result<Request<Empty<Bytes>>> {
    let mut b = Request::get(target.path.as_str()).header(http::header::HOST, target.addr.to_string());
    for (k, v) in &target.headers {
        b = b.header(k, v);
    }
    Ok(b.body(Empty::new())?)
}

/// Sends one request and reads the whole answer; returns the status.
pub async fn once(sender: &mut SendRequest<Empty<Bytes>>, target: &Target) -> anyhow::Result<u16> {
    sender.ready().await?;
    let response = sender.send_request(request(target)?).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

/// Runs `concurrency` connections for `warmup + measure` and reports the measured part.
pub async fn run(target: &Target, concurrency: usize, warmup: Duration, measure: Duration) -> anyhow::Result<Level> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let target = target.clone();
        workers.push(tokio::spawn(async move { worker(target, measure_from, end).await }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await??;
        latencies.extend(l);
        errors += e;
    }
    latencies.sort_unstable();
    let seconds = measure.as_secs_f64();
    let pct = |p: f64| -> u32 {
        if latencies.is_empty() {
            return 0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    Ok(Level {
        concurrency,
        requests: latencies.len() as u64,
        errors,
        seconds,
        rps: latencies.len() as f64 / seconds,
        p50_us: pct(0.50),
        p90_us: pct(0.90),
        p99_us: pct(0.99),
        max_us: latencies.last().copied().unwrap_or(0),
        cpu_s_per_10k: None,
    })
}

async fn worker(target: Target, measure_from: Instant, end: Instant) -> anyhow::Result<(Vec<u32>, u64)> {
    let mut latencies = Vec::with_capacity(65_536);
    let mut errors = 0u64;
    let mut sender = connect(target.addr).await?;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        match once(&mut sender, &target).await {
            Ok(status) if (200..300).contains(&status) => {
                if sent >= measure_from {
                    latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                }
            }
            Ok(_) => errors += 1,
            Err(_) => {
                errors += 1;
                sender = connect(target.addr).await?;
            }
        }
    }
    Ok((latencies, errors))
}

/// Time to first byte of a server-sent-events stream, `samples` times on one connection;
/// returns (p50, p99) in microseconds.
pub async fn sse_ttfb(target: &Target, samples: usize) -> anyhow::Result<(u32, u32)> {
    let mut sender = connect(target.addr).await?;
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples + 10 {
        sender.ready().await?;
        let sent = Instant::now();
        let response = sender.send_request(request(target)?).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{}: SSE answered {}",
            target.name,
            response.status()
        );
        let mut body = response.into_body();
        let mut first = None;
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if first.is_none() && frame.data_ref().is_some_and(|d| !d.is_empty()) {
                first = Some(sent.elapsed());
            }
        }
        let first = first.ok_or_else(|| anyhow::anyhow!("{}: SSE stream had no data", target.name))?;
        times.push(u32::try_from(first.as_micros()).unwrap_or(u32::MAX));
    }
    // The first requests warm the connection pools; they are not counted.
    let mut times = times.split_off(10);
    times.sort_unstable();
    let at = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    Ok((at(0.5), at(0.99)))
}

/// Waits (up to 5 s) until `target` answers 200.
pub async fn wait_until_up(target: &Target) -> anyhow::Result<()> {
    crate::procs::wait_ready(target.addr, &target.path, Instant::now(), Duration::from_secs(5))
        .await
        .map(|_| ())
}
