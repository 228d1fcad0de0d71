//! The fast upstream every path is measured against: a fixed 1 KB JSON document at `/json` and
//! a server-sent-events stream at `/sse` whose first event is sent at once.
//!
//! Runs on its own thread and single-threaded runtime, so it costs the same for every path.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;

/// The size of the JSON document.
pub const JSON_BYTES: usize = 1024;

/// A fixed JSON object of exactly [`JSON_BYTES`] bytes.
fn json_document() -> Bytes {
    let head = r#"{"object":"bench","data":""#;
    let tail = r#""}"#;
    let fill = "x".repeat(JSON_BYTES - head.len() - tail.len());
    Bytes::from(format!("{head}{fill}{tail}"))
}

/// Starts the upstream on 127.0.0.1 (a free port) and returns its address.
pub fn start() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let doc = json_document();
    std::thread::Builder::new().name("upstream".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("upstream: cannot start runtime: {e}");
                return;
            }
        };
        runtime.block_on(async move {
            let app = Router::new()
                .route(
                    "/json",
                    get(move || {
                        let doc = doc.clone();
                        async move { ([(header::CONTENT_TYPE, "application/json")], doc) }
                    }),
                )
                .route("/sse", get(sse));
            match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => {
                    if let Err(e) = axum::serve(l, app).await {
                        eprintln!("upstream: {e}");
                    }
                }
                Err(e) => eprintln!("upstream: {e}"),
            }
        });
    })?;
    Ok(addr)
}

/// One event at once, a second 20 ms later, then the end of the stream.
async fn sse() -> impl IntoResponse {
    let events = futures_util::stream::unfold(0u8, |n| async move {
        match n {
            0 => Some((Ok::<_, std::io::Error>(Bytes::from_static(b"data: first\n\n")), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((Ok(Bytes::from_static(b"data: last\n\n")), 2))
            }
            _ => None,
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
}
