//! A stand-in for a third-party API, for the README walk-through: listens on
//! 127.0.0.1:8081 (or the address given as the first argument), prints every request's
//! method, path and headers to its own terminal, and answers a small JSON document.
//!
//! It prints the headers it received so you can see the credential Keystile injected — and
//! that your Keystile key never arrived.

use axum::extract::Request;
use axum::response::Json;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("echo upstream listening on http://{}", listener.local_addr()?);
    let app = axum::Router::new().fallback(|req: Request| async move {
        println!("\n{} {}", req.method(), req.uri());
        for (name, value) in req.headers() {
            println!("  {name}: {}", String::from_utf8_lossy(value.as_bytes()));
        }
        let got_auth = req.headers().contains_key("authorization");
        Json::<Value>(json!({"hello": "from the upstream", "received_authorization_header": got_auth}))
    });
    axum::serve(listener, app).await
}
