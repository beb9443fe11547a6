//! Bodies are refused at the listener's limit, never buffered past it: 20
//! clients sending 10 MB each at once, declared by `Content-Length` or
//! streamed in chunks, to a route that takes no token (the PG's webhooks),
//! leave the process's peak resident memory within 20 MB of what it was.
//! Alone in its test binary: no other test's allocations share the process.

use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CLIENTS: usize = 20;
const BODY: usize = 10 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// Peak resident memory of this process so far (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb / 1024.0
}

/// Sends a 10 MB body to `/webhooks/pg` (declared or chunked) as far as
/// the server reads it; the status line it answered, if any.
async fn send_big(addr: std::net::SocketAddr, chunked: bool) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let framing = if chunked { "Transfer-Encoding: chunked".to_owned() } else { format!("Content-Length: {BODY}") };
    let head =
        format!("POST /webhooks/pg HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n");
    conn.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b' '; CHUNK];
    let mut sent = 0;
    while sent < BODY {
        let written = if chunked {
            let mut framed = format!("{CHUNK:x}\r\n").into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            conn.write_all(&framed).await
        } else {
            conn.write_all(&chunk).await
        };
        // The server answered and closed before taking it all: as it should.
        if written.is_err() {
            break;
        }
        sent += CHUNK;
    }
    if chunked && sent >= BODY {
        let _ = conn.write_all(b"0\r\n\r\n").await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_ten_megabyte_bodies_leave_memory_within_twenty_megabytes() {
    let stack = shop_local::Stack::start(shop_local::StackOptions::default()).await.expect("stack");
    // Warm up: one of each, so the allocator's arenas exist before the baseline.
    for chunked in [false, true] {
        send_big(stack.addr, chunked).await;
    }
    let idle = peak_rss_mb();
    let sends = (0..CLIENTS).map(|i| send_big(stack.addr, i % 2 == 1));
    let answers = futures::future::join_all(sends).await;
    let peak = peak_rss_mb();
    eprintln!("peak resident memory: {idle:.1} MB before, {peak:.1} MB after");
    for answer in &answers {
        assert!(answer.contains(" 413 "), "every body refused as too large: {answer:?}");
    }
    assert!(peak - idle <= 20.0, "peak resident memory grew {:.1} MB (idle peak {idle:.1} MB)", peak - idle);
    stack.stop().await;
}
