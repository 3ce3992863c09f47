//! The static-bytes baseline of the benchmarks (`tests/bench/run.sh`): the same HTTP
//! stack as `taxiway-server` (tokio multi-threaded runtime, hyper via `axum::serve`)
//! answering every GET with one file's bytes and a fixed set of headers — typically a
//! TAXII page and its `Content-Type` / `X-TAXII-Date-Added-*` headers captured from
//! the real server. Whatever it reaches is the limit of serving that page on this
//! machine; the benchmark quotes the server's figures as a ratio to it.
//!
//! ```text
//! cargo run --release -p taxiway-server --example static_page -- \
//!     --listen 127.0.0.1:9555 --body page.json [--headers page.headers]
//! ```
//!
//! `--headers` is a file of `Name: value` lines (as `curl -D` writes them; the status
//! line and hop-by-hop or length headers are ignored). It prints `listening on ADDR`
//! once it accepts connections and runs until killed.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::Router;

struct Args {
    listen: SocketAddr,
    body: PathBuf,
    headers: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut body = None;
    let mut headers = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|e| format!("--listen: {e}"))?),
            "--body" => body = Some(PathBuf::from(value)),
            "--headers" => headers = Some(PathBuf::from(value)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        body: body.ok_or("--body is required")?,
        headers,
    })
}

fn read_headers(path: &std::path::Path) -> Result<HeaderMap, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut map = HeaderMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue; // the status line, blank lines
        };
        let name = name.trim().to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "content-length" | "date" | "connection" | "transfer-encoding" | "keep-alive"
        ) {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("{name}: {e}"))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|e| format!("{value}: {e}"))?;
        map.append(name, value);
    }
    Ok(map)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "static_page: {e}\nusage: static_page --listen ADDR --body FILE [--headers FILE]"
            );
            std::process::exit(2);
        }
    };
    let body = match std::fs::read(&args.body) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            eprintln!("static_page: {}: {e}", args.body.display());
            std::process::exit(1);
        }
    };
    let headers = match args.headers.as_deref().map(read_headers).transpose() {
        Ok(h) => h.unwrap_or_default(),
        Err(e) => {
            eprintln!("static_page: {e}");
            std::process::exit(1);
        }
    };
    // The same runtime as `taxiway-server` (one worker per core).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let app = Router::new().fallback(move || {
            let body = body.clone();
            let headers = headers.clone();
            async move { (StatusCode::OK, headers, body) }
        });
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .unwrap_or_else(|e| {
                eprintln!("static_page: cannot listen on {}: {e}", args.listen);
                std::process::exit(1);
            });
        println!("listening on {}", args.listen);
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("static_page: {e}");
            std::process::exit(1);
        }
    });
}
