//! The Keystile benchmark harness (issue 6, SPEC S14).
//!
//! On loopback only, and bounded in time, it starts a fast upstream, then measures the same
//! request (GET of a 1 KB JSON document) sent directly, through nginx as a plain reverse proxy,
//! and through Keystile's path proxy and a route with an api_key credential injected, with one
//! load generator for all. Then server-sent-events time to first byte, start-up to ready, idle
//! memory, the same Keystile paths with 100 000 credentials and 100 000 API keys in the store,
//! and (with `--soak`) a 10-minute soak. Writes `results.json`, `RESULTS.md` and `latency.svg`.
//!
//! `--callgrind` instead counts the instructions Keystile executes per proxied request under
//! valgrind (independent of how busy the machine is), for before/after comparisons.
//!
//! Usage: `cargo run --release --manifest-path bench/Cargo.toml -- [--quick] [--soak]
//! [--keystile PATH] [--out DIR] [--callgrind]`

mod load;
mod procs;
mod report;
mod seed;
mod setup;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use load::{Level, Target};
use procs::Proc;
use report::{PathResult, Results};

mod upstream;

/// Command-line options.
struct Options {
    quick: bool,
    soak: bool,
    callgrind: bool,
    keystile: Option<PathBuf>,
    out: PathBuf,
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let mut o = Options {
            quick: false,
            soak: false,
            callgrind: false,
            keystile: None,
            out: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => o.quick = true,
                "--soak" => o.soak = true,
                "--callgrind" => o.callgrind = true,
                "--keystile" => o.keystile = Some(args.next().context("--keystile needs a path")?.into()),
                "--out" => o.out = args.next().context("--out needs a directory")?.into(),
                "-h" | "--help" => {
                    println!(
                        "keystile-bench [--quick] [--soak] [--callgrind] [--keystile PATH] [--out DIR]\n\
                         \n  --quick      2 levels (1, 16 connections), 2 s each, no scale run\
                         \n  --soak       add the 10-minute soak (RSS growth under load)\
                         \n  --callgrind  count instructions per proxied request under valgrind\
                         \n  --keystile   use this keystile binary instead of building it (cargo build --release)\
                         \n  --out        where results.json, RESULTS.md and latency.svg go (default: bench/)"
                    );
                    std::process::exit(0);
                }
                other => anyhow::bail!("unknown argument {other:?} (try --help)"),
            }
        }
        Ok(o)
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse()?;
    // The load generator gets one thread; the upstream has its own. Both cost the same for
    // every path measured, and leave the proxies the rest of the machine.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(options))
}

async fn run(o: Options) -> anyhow::Result<()> {
    let binary = match &o.keystile {
        Some(p) => p.clone(),
        None => build_keystile()?,
    };
    let upstream = upstream::start()?;
    let upstream_target = |name: &'static str, path: &str| Target {
        name,
        addr: upstream,
        path: path.to_owned(),
        headers: Vec::new(),
    };
    load::wait_until_up(&upstream_target("upstream", "/json")).await?;
    let work = TempDir::new("keystile-bench")?;
    if o.callgrind {
        return setup::callgrind(&binary, &work.0, upstream).await;
    }
    let load_before = loadavg();
    let (levels, warmup, measure) = if o.quick {
        (vec![1, 16], Duration::from_secs(1), Duration::from_secs(2))
    } else {
        (vec![1, 4, 16, 64], Duration::from_secs(1), Duration::from_secs(4))
    };
    let master = setup::master_key();
    let admin = setup::admin_token();

    // Start-up to ready, three times on fresh data directories; idle memory of the last.
    let mut fresh_ms = Vec::new();
    let mut keystile = None;
    for i in 0..3 {
        let spec = procs::KeystileSpec {
            binary: &binary,
            data_dir: &work.0.join(format!("fresh-{i}")),
            master_key_b64: &master.0,
            admin_token: &admin,
            wrapper: &[],
            env: &[],
        };
        let (p, addr, ready) = procs::start_keystile(&spec, Duration::from_secs(30)).await?;
        fresh_ms.push(ready.as_secs_f64() * 1000.0);
        if let Some((old, _)) = keystile.replace((p, addr)) {
            Proc::stop(old, Duration::from_secs(5));
        }
    }
    let (ks, ks_addr) = keystile.context("keystile did not start")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = ks.rss_kib();
    setup::credential_and_route(ks_addr, &admin, upstream).await?;
    // The same gateway with each audit event committed to SQLite before its response (the
    // design before the audit journal, and the default on PostgreSQL), for comparison.
    let db_audit_spec = procs::KeystileSpec {
        binary: &binary,
        data_dir: &work.0.join("db-audit"),
        master_key_b64: &master.0,
        admin_token: &admin,
        wrapper: &[],
        env: &[("KEYSTILE_AUDIT_DURABILITY", "database")],
    };
    let (ks_db, ks_db_addr, _) = procs::start_keystile(&db_audit_spec, Duration::from_secs(30)).await?;
    setup::credential_and_route(ks_db_addr, &admin, upstream).await?;
    let disk_sync = setup::disk_sync_floor(&work.0)?;
    eprintln!(
        "disk: append + fdatasync p50 {} µs, p99 {} µs",
        disk_sync.p50_us, disk_sync.p99_us
    );

    let (nginx, nginx_skipped) = match procs::nginx_binary() {
        Ok(bin) => {
            let dir = work.0.join("nginx");
            std::fs::create_dir_all(&dir)?;
            match procs::start_nginx(&bin, &dir, upstream, num_cpus()).await {
                Ok(n) => (Some(n), None),
                Err(e) => (None, Some(format!("nginx did not start: {e:#}"))),
            }
        }
        Err(why) => (None, Some(why)),
    };
    if let Some(why) = &nginx_skipped {
        eprintln!("skipping nginx: {why}");
    }

    let mut targets: Vec<(Target, Option<&Proc>)> = vec![(upstream_target("direct", "/json"), None)];
    if let Some((n, addr)) = &nginx {
        targets.push((
            Target {
                name: "nginx",
                addr: *addr,
                path: "/json".into(),
                headers: Vec::new(),
            },
            Some(n),
        ));
    }
    targets.push((setup::path_target(ks_addr, &admin, upstream, "/json")?, Some(&ks)));
    targets.push((setup::route_target(ks_addr, &admin, "/json")?, Some(&ks)));
    targets.push((
        Target {
            name: "keystile-path-db-audit",
            ..setup::path_target(ks_db_addr, &admin, upstream, "/json")?
        },
        Some(&ks_db),
    ));

    let mut paths = Vec::new();
    for (target, proc) in &targets {
        paths.push(measure_path(target, *proc, &levels, warmup, measure).await?);
    }
    let mut sse = Vec::new();
    for (target, _) in &targets {
        let t = Target {
            path: target.path.replace("/json", "/sse"),
            ..target.clone()
        };
        let (p50_us, p99_us) = load::sse_ttfb(&t, 200).await?;
        eprintln!("sse {}: p50 {p50_us} µs, p99 {p99_us} µs", t.name);
        sse.push(report::Sse {
            name: t.name.into(),
            p50_us,
            p99_us,
        });
    }
    Proc::stop(ks, Duration::from_secs(5));
    Proc::stop(ks_db, Duration::from_secs(5));
    if let Some((n, _)) = nginx {
        Proc::stop(n, Duration::from_secs(5));
    }

    let (scale, seeded_ms) = if o.quick {
        (None, None)
    } else {
        let (s, ms) = setup::scale_run(&binary, &work.0, &master, &admin, upstream, &levels, warmup, measure).await?;
        (Some(s), Some(ms))
    };
    let soak = if o.soak {
        Some(setup::soak(&binary, &work.0, &master, &admin, upstream).await?)
    } else {
        None
    };

    let results = Results {
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: format!(
            "cargo run --release --manifest-path bench/Cargo.toml --{}{}",
            if o.quick { " --quick" } else { "" },
            if o.soak { " --soak" } else { "" }
        ),
        machine: report::Machine {
            nproc: num_cpus(),
            cpu_model: cpu_model(),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            rustc: command_output("rustc", &["-V"]),
            load_before,
            load_after: loadavg(),
        },
        warmup_s: warmup.as_secs_f64(),
        measure_s: measure.as_secs_f64(),
        concurrency: levels,
        nginx_skipped,
        paths,
        sse,
        disk_sync,
        startup: report::Startup {
            fresh_ms,
            seeded_ms,
            idle_rss_kib,
        },
        scale,
        soak,
    };
    report::write(&o.out, &results)?;
    println!("wrote {}", o.out.join("RESULTS.md").display());
    Ok(())
}

/// Measures one path at every level, with the proxy's CPU time per level and its peak RSS.
async fn measure_path(
    target: &Target,
    proc: Option<&Proc>,
    levels: &[usize],
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<PathResult> {
    let mut out = Vec::new();
    for &c in levels {
        let cpu_before = proc.map(Proc::cpu_seconds);
        let mut level: Level = load::run(target, c, warmup, measure).await?;
        if let (Some(p), Some(before)) = (proc, cpu_before) {
            // CPU over warm-up + measurement, divided by the requests of both (estimated at the
            // measured rate), so the warm-up does not inflate the figure.
            let total_requests = level.rps * (warmup + measure).as_secs_f64();
            if total_requests > 0.0 {
                level.cpu_s_per_10k = Some((p.cpu_seconds() - before) / total_requests * 10_000.0);
            }
        }
        eprintln!(
            "{:>16} c={:<3} {:>8.0} req/s  p50 {:>6} µs  p99 {:>6} µs  errors {}",
            target.name, c, level.rps, level.p50_us, level.p99_us, level.errors
        );
        out.push(level);
    }
    Ok(PathResult {
        name: target.name.into(),
        levels: out,
        peak_rss_kib: proc.map(Proc::peak_rss_kib),
    })
}

/// Builds the release gateway next to this harness and returns its path.
fn build_keystile() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    eprintln!("building keystile (cargo build --release)…");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--locked", "--bin", "keystile", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release").join("keystile"))
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| "unknown".into(), |s| s.trim().to_owned())
}

fn loadavg() -> String {
    read_trim("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| format!("{program}: unknown"), |s| s.trim().to_owned())
}
