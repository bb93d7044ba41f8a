//! tokio-chat: the Tokio twin of weft's examples/chat.c, the same TCP chat
//! server with the same messages, limits and shutdown (weft's docs/chat.md).
//!
//! usage: tokio-chat [--port N] [--max-clients N]   (defaults: 7000, 100)
//!
//! Every line a client sends goes to every other client as "guestN: line",
//! through one broadcast channel; each client's forwarder moves what it
//! receives into a bounded outbound queue with try_send, and a client whose
//! queue is full is dropped. A semaphore caps the connections ("server
//! full"). SIGINT or SIGTERM stops the accept loop and tells every client
//! task to say goodbye; main returns once every client task has ended.
//! tokio-util's CancellationToken is not among the offline crates, so a
//! watch channel carries the stop instead.

use std::process::exit;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch, OwnedSemaphorePermit, Semaphore};

const MAX_LINE: u64 = 512; // bytes of a line with its "\n"; a longer line drops its client
const QUEUE_LEN: usize = 128; // messages waiting for one client's socket
const HISTORY: usize = 256; // the broadcast ring

#[derive(Clone)]
struct Msg {
    from: u64, // clients are not sent their own lines
    text: Arc<str>,
}

fn usage() -> ! {
    eprintln!("usage: tokio-chat [--port N] [--max-clients N]");
    exit(2);
}

async fn client(
    sock: TcpStream,
    id: u64,
    tx: broadcast::Sender<Msg>,
    mut rx: broadcast::Receiver<Msg>,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let (rd, mut wr) = sock.into_split();
    let (qtx, mut qrx) = mpsc::channel::<Arc<str>>(QUEUE_LEN);
    let _ = qtx.try_send(format!("welcome guest{id}\n").into());
    let reader = async {
        let mut rd = BufReader::new(rd);
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut rd).take(MAX_LINE).read_until(b'\n', &mut line).await {
                Ok(n) if n > 0 && line.ends_with(b"\n") => {}
                _ => return, // the client left, an error, or a line too long
            }
            let text = line.strip_suffix(b"\n").unwrap();
            let text = String::from_utf8_lossy(text.strip_suffix(b"\r").unwrap_or(text));
            let _ = tx.send(Msg { from: id, text: format!("guest{id}: {text}\n").into() });
        }
    };
    let forwarder = async {
        loop {
            let text = match rx.recv().await {
                Ok(m) if m.from == id => continue,
                Ok(m) => m.text,
                Err(RecvError::Lagged(n)) => format!("*** missed {n} messages\n").into(),
                Err(RecvError::Closed) => return,
            };
            if qtx.try_send(text.clone()).is_err() {
                tokio::task::yield_now().await; // the queue is full: give the writer a turn
                if qtx.try_send(text).is_err() {
                    return; // still full, the socket takes nothing: a slow client is dropped
                }
            }
        }
    };
    let writer = async {
        while let Some(text) = qrx.recv().await {
            if wr.write_all(text.as_bytes()).await.is_err() {
                return;
            }
        }
    };
    // biased: polled in this order, so after a forwarder's yield the writer
    // runs first and drains the queue if the socket takes data.
    let bye = tokio::select! {
        biased;
        _ = reader => false,
        _ = writer => false,
        _ = forwarder => false,
        _ = stop.changed() => true,
    };
    if bye {
        let bye = wr.write_all(b"*** server shutting down\n");
        let _ = tokio::time::timeout(Duration::from_secs(1), bye).await;
    }
}

#[tokio::main]
async fn main() {
    let (mut port, mut max_clients) = (7000u16, 100u32);
    let args: Vec<String> = std::env::args().skip(1).collect();
    for opt in args.chunks(2) {
        match (opt[0].as_str(), opt.get(1)) {
            ("--port", Some(v)) => port = v.parse().unwrap_or_else(|_| usage()),
            ("--max-clients", Some(v)) => max_clients = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if max_clients == 0 {
        usage();
    }
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM");
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap_or_else(|e| {
        eprintln!("chat: listen: {e}");
        exit(1)
    });
    println!("listening on {}", listener.local_addr().unwrap());
    let (tx, _) = broadcast::channel(HISTORY);
    let slots = Arc::new(Semaphore::new(max_clients as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut next_id = 0;
    loop {
        let mut sock = tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            r = listener.accept() => match r {
                Ok((sock, _)) => sock,
                Err(_) => continue, // a connection that failed before it was accepted
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let _ = sock.write_all(b"server full\n").await;
            continue;
        };
        next_id += 1;
        tokio::spawn(client(sock, next_id, tx.clone(), tx.subscribe(), stop_rx.clone(), permit));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Each client task holds a permit until it has ended.
    let _ = slots.acquire_many(max_clients).await;
}
