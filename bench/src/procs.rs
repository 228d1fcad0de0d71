//! Child processes under test (the Keystile binary, nginx) and what /proc says about them:
//! CPU time (utime + stime), peak and current resident memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// A child that is killed (and reaped) when dropped, so no run leaves a server behind.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    /// The child and, for a master/worker server like nginx, its children.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.child.id()];
        pids.extend(children_of(self.child.id()));
        pids
    }

    /// CPU seconds used so far by the process tree.
    pub fn cpu_seconds(&self) -> f64 {
        self.pids().iter().map(|p| cpu_seconds(*p)).sum()
    }

    /// Peak resident set (VmHWM) of the tree, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.pids().iter().map(|p| status_kib(*p, "VmHWM:")).sum()
    }

    /// Current resident set (VmRSS) of the tree, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.pids().iter().map(|p| status_kib(*p, "VmRSS:")).sum()
    }

    /// Asks the process to stop (SIGTERM via `kill`, which lets Keystile shut down gracefully)
    /// and waits up to `grace` before killing it.
    pub fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| stat_fields(*p).and_then(|f| f.get(1).and_then(|s| s.parse::<u32>().ok())) == Some(pid))
        .collect()
}

/// The fields of /proc/<pid>/stat after the command name (field 3 onwards).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// Clock ticks per second for /proc times (`getconf CLK_TCK`; 100 on every Linux we know).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn cpu_seconds(pid: u32) -> f64 {
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the command name.
    let Some(f) = stat_fields(pid) else { return 0.0 };
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / clock_ticks()
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// A free port on 127.0.0.1 (bound and released; the child binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Everything needed to start Keystile.
pub struct KeystileSpec<'a> {
    pub binary: &'a Path,
    pub data_dir: &'a Path,
    pub master_key_b64: &'a str,
    pub admin_token: &'a str,
    /// Optional wrapper (e.g. valgrind) and its arguments.
    pub wrapper: &'a [String],
    /// Extra environment variables.
    pub env: &'a [(&'a str, &'a str)],
}

/// Starts `keystile serve` on a free loopback port and waits until `/ready` answers 200.
/// Returns the process, its address and the time from spawn to ready.
pub async fn start_keystile(
    spec: &KeystileSpec<'_>,
    timeout: Duration,
) -> anyhow::Result<(Proc, SocketAddr, Duration)> {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let mut cmd = match spec.wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(spec.binary);
            c
        }
        None => Command::new(spec.binary),
    };
    cmd.arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(spec.data_dir)
        .env("KEYSTILE_MASTER_KEY", spec.master_key_b64)
        .env("KEYSTILE_ADMIN_TOKEN", spec.admin_token)
        .env("KEYSTILE_LOG", "warn")
        // The load generator sends far more than the default 1000 proxy calls per key per
        // minute. The limits stay on (every request still pays for its counters), only high.
        .env("KEYSTILE_LIMITS_PROXY_PER_MINUTE", "1000000000")
        .env("KEYSTILE_LIMITS_MANAGEMENT_PER_MINUTE", "1000000000")
        .env_remove("KEYSTILE_REDIS_URL")
        .env_remove("KEYSTILE_DATABASE_URL")
        .env_remove("KEYSTILE_CONFIG")
        .env_remove("KEYSTILE_AUDIT_DURABILITY")
        .envs(spec.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", spec.binary.display()))?;
    let proc = Proc { child };
    let ready = wait_ready(addr, "/ready", started, timeout).await?;
    Ok((proc, addr, ready))
}

/// Polls `path` every millisecond until it answers 200.
pub async fn wait_ready(addr: SocketAddr, path: &str, since: Instant, timeout: Duration) -> anyhow::Result<Duration> {
    let target = crate::load::Target {
        name: "ready",
        addr,
        path: path.to_owned(),
        headers: Vec::new(),
    };
    while since.elapsed() < timeout {
        if let Ok(mut s) = crate::load::connect(addr).await
            && let Ok(200) = crate::load::once(&mut s, &target).await
        {
            return Ok(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    anyhow::bail!("{addr}{path} not ready after {timeout:?}")
}

/// Finds nginx, installing Debian's package when absent. `Err` carries the reason to print.
pub fn nginx_binary() -> Result<PathBuf, String> {
    let find = || {
        ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    eprintln!("nginx not found; trying apt-get install -y nginx-light");
    let installed = Command::new("apt-get")
        .args(["install", "-y", "nginx-light"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    match find() {
        Some(p) if installed => Ok(p),
        _ => Err("nginx is not installed and apt-get could not install it".into()),
    }
}

/// Starts nginx as a plain reverse proxy to `upstream` (keep-alive to the upstream, response
/// buffering off so server-sent events stream, no per-connection request cap, no access log),
/// one worker per core, config in `dir`.
pub async fn start_nginx(
    binary: &Path,
    dir: &Path,
    upstream: SocketAddr,
    workers: usize,
) -> anyhow::Result<(Proc, SocketAddr)> {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let d = dir.display();
    let conf = format!(
        "worker_processes {workers};\ndaemon off;\nmaster_process on;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream up {{ server {upstream}; keepalive 128; keepalive_requests 100000000; }}\n\
           server {{\n    listen {addr};\n    location / {{\n      proxy_pass http://up;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let child = Command::new(binary)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting nginx")?;
    let proc = Proc { child };
    // nginx has no health endpoint of its own: ready when it proxies the upstream.
    wait_ready(addr, "/json", Instant::now(), Duration::from_secs(10)).await?;
    Ok((proc, addr))
}
