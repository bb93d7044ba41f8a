//! tokio-http: minimal HTTP/1.1 keep-alive responder, the Tokio peer of
//! weft's HTTP benchmark server.
//!
//! usage: tokio-http PORT [--workers N]
//!
//! Listens on 127.0.0.1:PORT.  Every complete request found in a connection's
//! buffer is answered, in order (pipelining), with a fixed 200 response whose
//! body is "Hello, World!".  Request bodies announced with Content-Length are
//! skipped.  The connection stays open until the peer closes it, a request
//! says "Connection: close", or a request cannot be parsed.

use std::process::exit;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Builder;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Length: 13\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hello, World!";

/// Largest request head accepted; a longer one closes the connection.
const MAX_HEAD: usize = 64 * 1024;

fn usage() -> ! {
    eprintln!("usage: tokio-http PORT [--workers N]");
    exit(2);
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// What a complete request head tells us.
struct Head {
    body_len: usize,
    close: bool,
}

fn parse_head(head: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next()?;
    let mut parts = request_line.split(' ');
    let (_method, _target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let mut close = version == "HTTP/1.0";
    let mut body_len = 0;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body_len = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                close = false;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return None; // chunked request bodies are not supported
        }
    }
    Some(Head { body_len, close })
}

async fn serve(mut sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let mut inbuf: Vec<u8> = Vec::with_capacity(8192);
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        let n = match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        inbuf.extend_from_slice(&chunk[..n]);

        // Answer every complete request in the buffer, in order.
        let mut used = 0;
        let mut close = false;
        while let Some(end) = find_head_end(&inbuf[used..]) {
            let head = match parse_head(&inbuf[used..used + end]) {
                Some(h) => h,
                None => {
                    close = true;
                    break;
                }
            };
            if inbuf.len() - used < end + head.body_len {
                break; // body not fully here yet
            }
            used += end + head.body_len;
            out.extend_from_slice(RESPONSE);
            if head.close {
                close = true;
                break;
            }
        }
        inbuf.drain(..used);
        if !out.is_empty() {
            if sock.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close || inbuf.len() > MAX_HEAD {
            return;
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next().map(|p| p.parse()) {
        Some(Ok(p)) => p,
        _ => usage(),
    };
    let mut workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    while let Some(a) = args.next() {
        let v = if a == "--workers" {
            args.next()
        } else if let Some(v) = a.strip_prefix("--workers=") {
            Some(v.to_string())
        } else {
            usage()
        };
        workers = match v.map(|v| v.parse::<usize>()) {
            Some(Ok(n)) if n > 0 => n,
            _ => usage(),
        };
    }

    let rt = Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("building the Tokio runtime");
    rt.block_on(async move {
        let listener = match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tokio-http: bind 127.0.0.1:{}: {}", port, e);
                exit(1);
            }
        };
        eprintln!("tokio-http: listening on 127.0.0.1:{} with {} workers", port, workers);
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    tokio::spawn(serve(sock));
                }
                Err(e) => {
                    // e.g. EMFILE: back off briefly instead of spinning.
                    eprintln!("tokio-http: accept: {}", e);
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    });
}
