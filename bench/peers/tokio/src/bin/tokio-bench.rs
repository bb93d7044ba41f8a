//! tokio-bench: the Tokio peer of weft-bench.
//!
//! Prints one line per figure on stdout, `name value unit`; lines starting
//! with `#` are comments; diagnostics go to stderr.  Every figure is the
//! median of the timed iterations, after one untimed warm-up iteration.
//!
//! Options: --workers N   worker threads (default: number of CPUs)
//!          --only NAME   run a single workload
//!          --iters N     timed iterations (default 5)

use std::future::pending;
use std::io::Write;
use std::process::exit;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::{oneshot, Mutex, RwLock, Semaphore};

// Sizes follow Tokio's benches/rt_multi_threaded.rs.
const SPAWN_COUNT: usize = 10_000;
const YIELD_TASKS: usize = 200;
const YIELDS_PER_TASK: usize = 1_000;
const PING_ROUNDS: usize = 1_000;
const CHAIN_DEPTH: usize = 1_000;
const BLOCKING_JOBS: usize = 10_000;
const TIMER_TASKS: usize = 100_000;
const TIMER_SEED: u64 = 88172645463325252;
const TIMER_1M_TASKS: usize = 1_000_000;
const TIMER_1M_RANGE_MS: u64 = 1_000;
const TCP_CONNS: usize = 50;
const TCP_ROUNDS: usize = 2_000;
const TCP_MSG: usize = 64;
const LINES_N: usize = 1_000_000;
const LINES_TEXT: &[u8] = b"0123456789abcde\n";
const IDLE_TASKS: usize = 100_000;

struct Opts {
    workers: usize,
    only: Option<String>,
    iters: usize,
}

/// One measured value of each figure a workload produces, in the order of
/// `Workload::figures`.
type Sample = Vec<f64>;

struct Workload {
    /// (figure name, unit, decimals)
    figures: &'static [(&'static str, &'static str, usize)],
    /// Runs the workload `iters + 1` times (first is warm-up) and returns one
    /// sample per timed iteration.
    run: fn(&Opts) -> Vec<Sample>,
}

const WORKLOADS: &[Workload] = &[
    Workload { figures: &[("spawn_many_local", "ns/task", 1)], run: spawn_many_local },
    Workload { figures: &[("spawn_many_remote", "ns/task", 1)], run: spawn_many_remote },
    Workload { figures: &[("yield_many", "ns/yield", 1)], run: yield_many },
    Workload { figures: &[("ping_pong", "ns/round", 1)], run: ping_pong },
    Workload { figures: &[("chained_spawn", "ns/spawn", 1)], run: chained_spawn },
    Workload { figures: &[("spawn_blocking", "ns/job", 1)], run: spawn_blocking },
    Workload { figures: &[("spawn_blocking_8_spawners", "ns/job", 1)], run: spawn_blocking_8_spawners },
    Workload {
        figures: &[
            ("timers_wall", "ms", 3),
            ("timers_late_p50", "ms", 3),
            ("timers_late_p99", "ms", 3),
        ],
        run: timers,
    },
    Workload {
        figures: &[
            ("timers_1m_wall", "ms", 3),
            ("timers_1m_late_p50", "ms", 3),
            ("timers_1m_late_p99", "ms", 3),
        ],
        run: timers_1m,
    },
    Workload { figures: &[("tcp_echo", "round trips/s", 0)], run: tcp_echo },
    Workload { figures: &[("lines_throughput", "lines/s", 0)], run: lines_throughput },
    Workload { figures: &[("file_read", "MB/s", 1)], run: file_read },
    Workload { figures: &[("proxy_throughput", "MB/s", 1)], run: proxy_throughput },
    Workload { figures: &[("idle_task_bytes", "bytes/task", 1)], run: idle_task_bytes },
    Workload { figures: &[("mutex_contended", "ns/lock", 1)], run: mutex_contended },
    Workload { figures: &[("semaphore_contended", "ns/acquire", 1)], run: semaphore_contended },
    Workload { figures: &[("mpsc_throughput", "ns/msg", 1)], run: mpsc_throughput },
    Workload { figures: &[("broadcast_fanout", "ns/delivery", 1)], run: broadcast_fanout },
    Workload { figures: &[("futures_unordered", "ns/completion", 1)], run: futures_unordered },
    Workload { figures: &[("rwlock_read_heavy", "ns/op", 1)], run: rwlock_read_heavy },
    Workload { figures: &[("joinset", "ns/task", 1)], run: joinset },
    Workload { figures: &[("blockon_spawn_join", "ns/round", 1)], run: blockon_spawn_join },
    Workload { figures: &[("fanout_tree", "ns/task", 1)], run: fanout_tree },
];

fn usage() -> ! {
    eprintln!("usage: tokio-bench [--workers N] [--only NAME] [--iters N]");
    eprint!("workloads:");
    for w in WORKLOADS {
        for f in w.figures {
            eprint!(" {}", f.0);
        }
    }
    eprintln!(" (timers runs timers_wall/timers_late_p50/timers_late_p99 together, timers_1m its three)");
    exit(2);
}

fn parse_num(flag: &str, v: Option<String>) -> usize {
    match v.as_deref().map(str::parse::<usize>) {
        Some(Ok(n)) if n > 0 => n,
        _ => {
            eprintln!("tokio-bench: {} needs a positive integer", flag);
            usage();
        }
    }
}

fn parse_opts() -> Opts {
    let mut opts = Opts {
        workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        only: None,
        iters: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        // Accept both "--flag value" and "--flag=value".
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match flag.as_str() {
            "--workers" => opts.workers = parse_num("--workers", value()),
            "--iters" => opts.iters = parse_num("--iters", value()),
            "--only" => match value() {
                Some(n) => opts.only = Some(n),
                None => usage(),
            },
            "-h" | "--help" => usage(),
            _ => {
                eprintln!("tokio-bench: unknown argument {:?}", a);
                usage();
            }
        }
    }
    opts
}

fn selected(w: &Workload, only: &Option<String>) -> bool {
    match only {
        None => true,
        Some(name) => {
            w.figures.iter().any(|f| f.0 == name)
                || (name == "timers" && w.figures[0].0 == "timers_wall")
                || (name == "timers_1m" && w.figures[0].0 == "timers_1m_wall")
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let opts = parse_opts();
    if let Some(name) = &opts.only {
        if !WORKLOADS.iter().any(|w| selected(w, &opts.only)) {
            eprintln!("tokio-bench: no workload named {:?}", name);
            usage();
        }
    }
    println!("# tokio-bench (tokio 1.24) workers={} iters={}", opts.workers, opts.iters);
    for w in WORKLOADS.iter().filter(|w| selected(w, &opts.only)) {
        let samples = (w.run)(&opts);
        for (i, (name, unit, decimals)) in w.figures.iter().enumerate() {
            let m = median(samples.iter().map(|s| s[i]).collect());
            println!("{} {:.*} {}", name, *decimals, m, unit);
        }
        let _ = std::io::stdout().flush();
    }
}

fn runtime(workers: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("building the Tokio runtime")
}

/// Runs `once` one untimed time, then `iters` timed times, on one runtime.
fn repeat(opts: &Opts, mut once: impl FnMut(&Runtime) -> Sample) -> Vec<Sample> {
    let rt = runtime(opts.workers);
    once(&rt);
    let samples = (0..opts.iters).map(|_| once(&rt)).collect();
    rt.shutdown_timeout(Duration::from_secs(5));
    samples
}

fn ns_per(elapsed: Duration, count: usize) -> f64 {
    elapsed.as_nanos() as f64 / count as f64
}

/// Task body shared by the spawn workloads: count down, the last one signals.
fn count_down(left: &AtomicUsize, done: &mpsc::SyncSender<()>) {
    if left.fetch_sub(1, Ordering::AcqRel) == 1 {
        done.send(()).unwrap();
    }
}

// ---------------------------------------------------------------- spawn_many

fn spawn_many_local(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let (tx, rx) = mpsc::sync_channel(1);
        let left = Arc::new(AtomicUsize::new(SPAWN_COUNT));
        let start = Instant::now();
        rt.spawn(async move {
            for _ in 0..SPAWN_COUNT {
                let left = left.clone();
                let tx = tx.clone();
                tokio::spawn(async move { count_down(&left, &tx) });
            }
        });
        rx.recv().unwrap();
        vec![ns_per(start.elapsed(), SPAWN_COUNT)]
    })
}

fn spawn_many_remote(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let handle = rt.handle().clone();
        let (tx, rx) = mpsc::sync_channel(1);
        let left = Arc::new(AtomicUsize::new(SPAWN_COUNT));
        let start = Instant::now();
        for _ in 0..SPAWN_COUNT {
            let left = left.clone();
            let tx = tx.clone();
            handle.spawn(async move { count_down(&left, &tx) });
        }
        rx.recv().unwrap();
        vec![ns_per(start.elapsed(), SPAWN_COUNT)]
    })
}

// ---------------------------------------------------------------- yield_many

fn yield_many(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let (tx, rx) = mpsc::sync_channel(1);
        let left = Arc::new(AtomicUsize::new(YIELD_TASKS));
        let start = Instant::now();
        for _ in 0..YIELD_TASKS {
            let left = left.clone();
            let tx = tx.clone();
            rt.spawn(async move {
                for _ in 0..YIELDS_PER_TASK {
                    tokio::task::yield_now().await;
                }
                count_down(&left, &tx);
            });
        }
        rx.recv().unwrap();
        vec![ns_per(start.elapsed(), YIELD_TASKS * YIELDS_PER_TASK)]
    })
}

// ----------------------------------------------------------------- ping_pong

fn ping_pong(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let (tx, rx) = mpsc::sync_channel(1);
        let left = Arc::new(AtomicUsize::new(PING_ROUNDS));
        let start = Instant::now();
        rt.spawn(async move {
            for _ in 0..PING_ROUNDS {
                let left = left.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (ping_tx, ping_rx) = oneshot::channel::<()>();
                    let (pong_tx, pong_rx) = oneshot::channel::<()>();
                    tokio::spawn(async move {
                        ping_rx.await.unwrap();
                        pong_tx.send(()).unwrap();
                    });
                    ping_tx.send(()).unwrap();
                    pong_rx.await.unwrap();
                    count_down(&left, &tx);
                });
            }
        });
        rx.recv().unwrap();
        vec![ns_per(start.elapsed(), PING_ROUNDS)]
    })
}

// ------------------------------------------------------------- chained_spawn

fn chain_link(remaining: usize, done: mpsc::SyncSender<()>) {
    if remaining == 0 {
        done.send(()).unwrap();
    } else {
        tokio::spawn(async move { chain_link(remaining - 1, done) });
    }
}

fn chained_spawn(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let (tx, rx) = mpsc::sync_channel(1);
        let start = Instant::now();
        // The first task is link 1; it spawns 2, ... up to CHAIN_DEPTH tasks.
        rt.spawn(async move { chain_link(CHAIN_DEPTH - 1, tx) });
        rx.recv().unwrap();
        vec![ns_per(start.elapsed(), CHAIN_DEPTH)]
    })
}

// ------------------------------------------------------------ spawn_blocking

fn spawn_blocking(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let (tx, rx) = mpsc::sync_channel(1);
        let start = Instant::now();
        rt.spawn(async move {
            let handles: Vec<_> = (0..BLOCKING_JOBS)
                .map(|i| tokio::task::spawn_blocking(move || i as u64 * 3 + 1))
                .collect();
            let mut sum = 0u64;
            for h in handles {
                sum = sum.wrapping_add(h.await.unwrap());
            }
            tx.send(sum).unwrap();
        });
        let sum = rx.recv().unwrap();
        let elapsed = start.elapsed();
        std::hint::black_box(sum);
        vec![ns_per(elapsed, BLOCKING_JOBS)]
    })
}

/// The same number of detached jobs started by 8 plain threads at once
/// through a runtime handle: how the blocking queue takes many spawners.
fn spawn_blocking_8_spawners(opts: &Opts) -> Vec<Sample> {
    const SPAWNERS: usize = 8;
    repeat(opts, |rt| {
        let (tx, rx) = mpsc::sync_channel(1);
        let left = Arc::new(AtomicUsize::new(BLOCKING_JOBS));
        let start = Instant::now();
        let threads: Vec<_> = (0..SPAWNERS)
            .map(|_| {
                let h = rt.handle().clone();
                let left = left.clone();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for _ in 0..BLOCKING_JOBS / SPAWNERS {
                        let left = left.clone();
                        let tx = tx.clone();
                        h.spawn_blocking(move || count_down(&left, &tx));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        rx.recv().unwrap();
        vec![ns_per(start.elapsed(), BLOCKING_JOBS)]
    })
}

// -------------------------------------------------------------------- timers

struct XorShift64(u64);

impl XorShift64 {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Nearest-rank percentile of an ascending-sorted slice.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn timers(opts: &Opts) -> Vec<Sample> {
    let mut rng = XorShift64(TIMER_SEED);
    let durations: Arc<Vec<Duration>> = Arc::new(
        (0..TIMER_TASKS)
            .map(|_| Duration::from_millis(1 + rng.next() % 50))
            .collect(),
    );
    repeat(opts, |rt| {
        // Lateness of task i, in ms, stored as f64 bits.
        let lateness: Arc<Vec<AtomicU64>> =
            Arc::new((0..TIMER_TASKS).map(|_| AtomicU64::new(0)).collect());
        let left = Arc::new(AtomicUsize::new(TIMER_TASKS));
        let (tx, rx) = mpsc::sync_channel::<Instant>(1);
        let durations = durations.clone();
        let lat = lateness.clone();
        let start = Instant::now();
        rt.spawn(async move {
            for i in 0..TIMER_TASKS {
                let requested = durations[i];
                let lat = lat.clone();
                let left = left.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    tokio::time::sleep(requested).await;
                    let late = t0.elapsed().as_secs_f64() * 1e3 - requested.as_secs_f64() * 1e3;
                    lat[i].store(late.to_bits(), Ordering::Relaxed);
                    if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                        tx.send(Instant::now()).unwrap();
                    }
                });
            }
        });
        let end = rx.recv().unwrap();
        let wall_ms = end.duration_since(start).as_secs_f64() * 1e3;
        let mut late: Vec<f64> =
            lateness.iter().map(|a| f64::from_bits(a.load(Ordering::Relaxed))).collect();
        late.sort_by(|a, b| a.partial_cmp(b).unwrap());
        vec![wall_ms, percentile(&late, 50.0), percentile(&late, 99.0)]
    })
}

/// timers_1m: a million concurrent sleeps of 1-1000 ms, spawned from outside
/// the runtime (the main thread) as weft-bench does; lateness measured in each
/// task from its first poll, so the spawning time is not in it.
fn timers_1m(opts: &Opts) -> Vec<Sample> {
    let mut rng = XorShift64(TIMER_SEED);
    let durations: Vec<u32> =
        (0..TIMER_1M_TASKS).map(|_| (1 + rng.next() % TIMER_1M_RANGE_MS) as u32).collect();
    repeat(opts, |rt| {
        let lateness: Arc<Vec<AtomicU64>> =
            Arc::new((0..TIMER_1M_TASKS).map(|_| AtomicU64::new(0)).collect());
        let left = Arc::new(AtomicUsize::new(TIMER_1M_TASKS));
        let (tx, rx) = mpsc::sync_channel::<Instant>(1);
        let handle = rt.handle().clone();
        let start = Instant::now();
        for (i, &ms) in durations.iter().enumerate() {
            let lat = lateness.clone();
            let left = left.clone();
            let tx = tx.clone();
            handle.spawn(async move {
                let t0 = Instant::now();
                tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                let late = t0.elapsed().as_secs_f64() * 1e3 - ms as f64;
                lat[i].store(late.to_bits(), Ordering::Relaxed);
                if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    tx.send(Instant::now()).unwrap();
                }
            });
        }
        let end = rx.recv().unwrap();
        let wall_ms = end.duration_since(start).as_secs_f64() * 1e3;
        let mut late: Vec<f64> =
            lateness.iter().map(|a| f64::from_bits(a.load(Ordering::Relaxed))).collect();
        late.sort_by(|a, b| a.partial_cmp(b).unwrap());
        vec![wall_ms, percentile(&late, 50.0), percentile(&late, 99.0)]
    })
}

// ------------------------------------------------------------------ tcp_echo

async fn echo_server(mut sock: TcpStream) {
    let mut buf = [0u8; TCP_MSG];
    loop {
        match sock.read_exact(&mut buf).await {
            Ok(_) => {}
            Err(_) => return, // EOF: the client is done
        }
        if sock.write_all(&buf).await.is_err() {
            return;
        }
    }
}

async fn echo_client(addr: std::net::SocketAddr) {
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    sock.set_nodelay(true).unwrap();
    let out = [0x5au8; TCP_MSG];
    let mut back = [0u8; TCP_MSG];
    for _ in 0..TCP_ROUNDS {
        sock.write_all(&out).await.expect("client write");
        sock.read_exact(&mut back).await.expect("client read");
    }
    assert_eq!(back, out);
}

fn tcp_echo(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::sync_channel(1);
        let left = Arc::new(AtomicUsize::new(TCP_CONNS));
        let start = Instant::now();
        let acceptor = rt.spawn(async move {
            for _ in 0..TCP_CONNS {
                let (sock, _) = listener.accept().await.expect("accept");
                sock.set_nodelay(true).unwrap();
                tokio::spawn(echo_server(sock));
            }
        });
        for _ in 0..TCP_CONNS {
            let left = left.clone();
            let tx = tx.clone();
            rt.spawn(async move {
                echo_client(addr).await;
                count_down(&left, &tx);
            });
        }
        rx.recv().unwrap();
        let secs = start.elapsed().as_secs_f64();
        rt.block_on(acceptor).unwrap();
        vec![(TCP_CONNS * TCP_ROUNDS) as f64 / secs]
    })
}

// ---------------------------------------------------------- proxy_throughput
// The shape of weft-bench's: PROXY_CONNS clients each push PROXY_BYTES
// through a copy_bidirectional proxy to an echo upstream (io::copy of the
// socket's read half into its write half) and read them back, writer and
// reader in two tasks; MB (10^6 bytes) sent per second, one way.

const PROXY_CONNS: usize = 4;
const PROXY_BYTES: usize = 32 << 20;
const PROXY_CHUNK: usize = 65536;

async fn px_echo(mut sock: TcpStream) {
    let (mut r, mut w) = sock.split();
    tokio::io::copy(&mut r, &mut w).await.expect("echo copy");
    w.shutdown().await.expect("echo shutdown");
}

async fn px_session(mut client: TcpStream, up: std::net::SocketAddr) {
    let mut upstream = TcpStream::connect(up).await.expect("proxy connect");
    client.set_nodelay(true).unwrap();
    upstream.set_nodelay(true).unwrap();
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await.expect("proxy copy");
}

async fn px_client(addr: std::net::SocketAddr) {
    let sock = TcpStream::connect(addr).await.expect("connect");
    let (mut r, mut w) = sock.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5au8; PROXY_CHUNK];
        for _ in 0..PROXY_BYTES / PROXY_CHUNK {
            w.write_all(&chunk).await.expect("client write");
        }
        w.shutdown().await.expect("client shutdown");
    });
    let mut buf = vec![0u8; PROXY_CHUNK];
    let mut got = 0;
    loop {
        let n = r.read(&mut buf).await.expect("client read");
        if n == 0 {
            break;
        }
        got += n;
    }
    assert_eq!(got, PROXY_BYTES);
    writer.await.unwrap();
}

fn proxy_throughput(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let up = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let px = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let up_addr = up.local_addr().unwrap();
        let px_addr = px.local_addr().unwrap();
        let (tx, rx) = mpsc::sync_channel(1);
        let left = Arc::new(AtomicUsize::new(PROXY_CONNS));
        let start = Instant::now();
        let echo_acceptor = rt.spawn(async move {
            for _ in 0..PROXY_CONNS {
                let (sock, _) = up.accept().await.expect("accept");
                tokio::spawn(px_echo(sock));
            }
        });
        let proxy_acceptor = rt.spawn(async move {
            for _ in 0..PROXY_CONNS {
                let (sock, _) = px.accept().await.expect("accept");
                tokio::spawn(px_session(sock, up_addr));
            }
        });
        for _ in 0..PROXY_CONNS {
            let left = left.clone();
            let tx = tx.clone();
            rt.spawn(async move {
                px_client(px_addr).await;
                count_down(&left, &tx);
            });
        }
        rx.recv().unwrap();
        let secs = start.elapsed().as_secs_f64();
        rt.block_on(echo_acceptor).unwrap();
        rt.block_on(proxy_acceptor).unwrap();
        vec![(PROXY_CONNS * PROXY_BYTES) as f64 / 1e6 / secs]
    })
}

// ---------------------------------------------------------- lines_throughput

/// A writer task sends LINES_N 16-byte lines over one loopback TCP
/// connection through a 64 KiB BufWriter; a reader task reads them back
/// with BufReader (8 KiB, the default) and read_until(b'\n') into a
/// cleared Vec (weft's read_line: bytes, no UTF-8 check) and counts them.
fn lines_throughput(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let start = Instant::now();
        let writer = rt.spawn(async move {
            let (sock, _) = listener.accept().await.expect("accept");
            let mut w = BufWriter::with_capacity(65536, sock);
            for _ in 0..LINES_N {
                w.write_all(LINES_TEXT).await.expect("write");
            }
            w.shutdown().await.expect("shutdown");
        });
        let reader = rt.spawn(async move {
            let sock = TcpStream::connect(addr).await.expect("connect");
            let mut r = BufReader::with_capacity(8192, sock);
            let mut line = Vec::new();
            let mut count = 0usize;
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line).await.expect("read_until") == 0 {
                    break;
                }
                count += 1;
            }
            count
        });
        let count = rt.block_on(reader).unwrap();
        let secs = start.elapsed().as_secs_f64();
        rt.block_on(writer).unwrap();
        assert_eq!(count, LINES_N);
        vec![LINES_N as f64 / secs]
    })
}

// ----------------------------------------------------------- idle_task_bytes

extern "C" {
    // glibc: give free heap memory back to the OS so that the "before"
    // reading is not inflated by an earlier iteration's freed tasks.
    fn malloc_trim(pad: usize) -> i32;
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("reading /proc/self/statm");
    let resident: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("parsing /proc/self/statm");
    resident * page_size()
}

fn page_size() -> usize {
    extern "C" {
        fn sysconf(name: i32) -> i64;
    }
    const SC_PAGESIZE: i32 = 30; // _SC_PAGESIZE on Linux
    let p = unsafe { sysconf(SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

fn idle_task_bytes(opts: &Opts) -> Vec<Sample> {
    let once = || {
        let rt = runtime(opts.workers);
        // Let the workers start up and settle before the first reading.
        rt.block_on(async {
            tokio::spawn(async {}).await.unwrap();
        });
        unsafe {
            malloc_trim(0);
        }
        let polled = Arc::new(AtomicUsize::new(0));
        let before = rss_bytes();
        let handle = rt.handle().clone();
        for _ in 0..IDLE_TASKS {
            let polled = polled.clone();
            handle.spawn(async move {
                polled.fetch_add(1, Ordering::Relaxed);
                pending::<()>().await;
            });
        }
        while polled.load(Ordering::Relaxed) < IDLE_TASKS {
            std::thread::sleep(Duration::from_millis(1));
        }
        let after = rss_bytes();
        rt.shutdown_timeout(Duration::from_secs(5));
        (after as f64 - before as f64) / IDLE_TASKS as f64
    };
    once();
    (0..opts.iters).map(|_| vec![once()]).collect()
}

// ------------------------------------------------------------- sync locks
// Shapes (docs/locks.md): LOCK_TASKS tasks, LOCK_OPS operations each.

const LOCK_TASKS: usize = 64;
const LOCK_OPS: usize = 10_000;
const SEM_PERMITS: usize = 8;
const RW_WRITE_EVERY: usize = 16;

/// Spawns LOCK_TASKS copies of `body` and waits for the last one.
fn lock_storm<F, Fut>(rt: &Runtime, body: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    let left = Arc::new(AtomicUsize::new(LOCK_TASKS));
    let start = Instant::now();
    for _ in 0..LOCK_TASKS {
        let left = left.clone();
        let tx = tx.clone();
        let fut = body();
        rt.spawn(async move {
            fut.await;
            count_down(&left, &tx);
        });
    }
    rx.recv().unwrap();
    start.elapsed()
}

fn mutex_contended(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let m = Arc::new(Mutex::new(0u64));
        let el = lock_storm(rt, || {
            let m = m.clone();
            async move {
                for _ in 0..LOCK_OPS {
                    *m.lock().await += 1;
                }
            }
        });
        assert_eq!(*rt.block_on(m.lock()), (LOCK_TASKS * LOCK_OPS) as u64);
        vec![ns_per(el, LOCK_TASKS * LOCK_OPS)]
    })
}

fn semaphore_contended(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let s = Arc::new(Semaphore::new(SEM_PERMITS));
        let n = Arc::new(AtomicU64::new(0));
        let el = lock_storm(rt, || {
            let s = s.clone();
            let n = n.clone();
            async move {
                for _ in 0..LOCK_OPS {
                    let p = s.acquire().await.unwrap();
                    n.fetch_add(1, Ordering::Relaxed);
                    drop(p);
                }
            }
        });
        assert_eq!(n.load(Ordering::Relaxed), (LOCK_TASKS * LOCK_OPS) as u64);
        vec![ns_per(el, LOCK_TASKS * LOCK_OPS)]
    })
}

// mpsc_throughput: MPSC_PRODUCERS tasks each send MPSC_PER u64 into one
// bounded channel of capacity MPSC_CAP; one consumer task receives them all.
const MPSC_PRODUCERS: usize = 8;
const MPSC_PER: usize = 100_000;
const MPSC_CAP: usize = 1024;

fn mpsc_throughput(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let start = Instant::now();
        let total = rt.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(MPSC_CAP);
            for p in 0..MPSC_PRODUCERS {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..MPSC_PER {
                        tx.send((p * MPSC_PER + i) as u64).await.unwrap();
                    }
                });
            }
            drop(tx);
            let consumer = tokio::spawn(async move {
                let mut n = 0usize;
                while let Some(_v) = rx.recv().await {
                    n += 1;
                }
                n
            });
            consumer.await.unwrap()
        });
        let el = start.elapsed();
        assert_eq!(total, MPSC_PRODUCERS * MPSC_PER);
        vec![ns_per(el, MPSC_PRODUCERS * MPSC_PER)]
    })
}

// broadcast_fanout: one sender task sends BC_SENDS u64 into a broadcast
// channel of capacity BC_CAP; BC_RECEIVERS receiver tasks read until it
// closes. Every BC_YIELD_EVERY sends the sender yields, and keeps yielding
// while it is BC_WINDOW or more messages ahead of the slowest receiver
// (each receiver publishes its progress), so no receiver lags. Figure:
// wall time per message delivered (received by one receiver), as in
// weft-bench.
const BC_RECEIVERS: usize = 16;
const BC_SENDS: u64 = 50_000;
const BC_CAP: usize = 1024;
const BC_YIELD_EVERY: u64 = 64;
const BC_WINDOW: u64 = 512;

#[repr(align(64))]
struct Padded(AtomicU64);

fn broadcast_fanout(opts: &Opts) -> Vec<Sample> {
    use tokio::sync::broadcast::error::RecvError;
    repeat(opts, |rt| {
        let received = Arc::new(AtomicU64::new(0));
        let missed = Arc::new(AtomicU64::new(0));
        let progress: Arc<Vec<Padded>> = Arc::new((0..BC_RECEIVERS).map(|_| Padded(AtomicU64::new(0))).collect());
        let left = Arc::new(AtomicUsize::new(BC_RECEIVERS));
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let start = Instant::now();
        let (tx, _) = tokio::sync::broadcast::channel::<u64>(BC_CAP);
        for id in 0..BC_RECEIVERS {
            let mut rx = tx.subscribe();
            let (received, missed, progress, left, done_tx) =
                (received.clone(), missed.clone(), progress.clone(), left.clone(), done_tx.clone());
            rt.spawn(async move {
                let (mut n, mut lost) = (0u64, 0u64);
                loop {
                    match rx.recv().await {
                        Ok(_v) => n += 1,
                        Err(RecvError::Lagged(k)) => lost += k,
                        Err(RecvError::Closed) => break,
                    }
                    progress[id].0.store(n + lost, Ordering::Relaxed);
                }
                assert_eq!(n + lost, BC_SENDS);
                received.fetch_add(n, Ordering::Relaxed);
                missed.fetch_add(lost, Ordering::Relaxed);
                count_down(&left, &done_tx);
            });
        }
        rt.spawn(async move {
            let slowest = || progress.iter().map(|p| p.0.load(Ordering::Relaxed)).min().unwrap();
            for i in 0..BC_SENDS {
                if i % BC_YIELD_EVERY == 0 && i > 0 {
                    loop {
                        tokio::task::yield_now().await;
                        if i - slowest() < BC_WINDOW {
                            break;
                        }
                    }
                }
                assert_eq!(tx.send(i).unwrap(), BC_RECEIVERS);
            }
        });
        done_rx.recv().unwrap();
        let el = start.elapsed();
        let lost = missed.load(Ordering::Relaxed);
        if lost != 0 {
            eprintln!("tokio-bench: broadcast_fanout: {} deliveries lost to lag", lost);
        }
        vec![ns_per(el, received.load(Ordering::Relaxed) as usize)]
    })
}

fn rwlock_read_heavy(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let l = Arc::new(RwLock::new(0u64));
        let reads = Arc::new(AtomicU64::new(0));
        let el = lock_storm(rt, || {
            let l = l.clone();
            let reads = reads.clone();
            async move {
                for i in 0..LOCK_OPS {
                    if i % RW_WRITE_EVERY == 0 {
                        *l.write().await += 1;
                    } else {
                        let g = l.read().await;
                        reads.fetch_add(*g & 1, Ordering::Relaxed);
                    }
                }
            }
        });
        let writes = LOCK_TASKS * ((LOCK_OPS + RW_WRITE_EVERY - 1) / RW_WRITE_EVERY);
        assert_eq!(*rt.block_on(l.read()), writes as u64);
        vec![ns_per(el, LOCK_TASKS * LOCK_OPS)]
    })
}

// futures_unordered: FU_MEMBERS oneshot receivers in one FuturesUnordered,
// each woken once by a sender task: each member counts its first poll (after
// its receiver has registered), and the member whose first poll is the last
// spawns the sender, which sends member i the value i, in push order; the
// draining task takes every output. Timed from the first channel created to
// the last output taken; ns per completion. The same in weft-bench.
const FU_MEMBERS: usize = 100_000;
const FU_BATCH: usize = 1_000; // pushes or sends between two yields
static FU_FIRST_POLLS: AtomicUsize = AtomicUsize::new(0);
// The senders, taken by the member whose first poll is the last.
static FU_TXS: std::sync::Mutex<Vec<oneshot::Sender<u32>>> = std::sync::Mutex::new(Vec::new());

async fn fu_sender(txs: Vec<oneshot::Sender<u32>>) {
    for (i, tx) in txs.into_iter().enumerate() {
        tx.send(i as u32).expect("futures_unordered send");
        if i % FU_BATCH == FU_BATCH - 1 {
            tokio::task::yield_now().await;
        }
    }
}

struct FuMember {
    rx: oneshot::Receiver<u32>,
    counted: bool,
}

impl std::future::Future for FuMember {
    type Output = u32;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<u32> {
        match std::pin::Pin::new(&mut self.rx).poll(cx) {
            std::task::Poll::Ready(v) => std::task::Poll::Ready(v.expect("futures_unordered recv")),
            std::task::Poll::Pending => {
                if !self.counted {
                    self.counted = true;
                    if FU_FIRST_POLLS.fetch_add(1, Ordering::AcqRel) == FU_MEMBERS - 1 {
                        let txs = std::mem::take(&mut *FU_TXS.lock().unwrap());
                        tokio::spawn(fu_sender(txs));
                    }
                }
                std::task::Poll::Pending
            }
        }
    }
}

fn futures_unordered(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        FU_FIRST_POLLS.store(0, Ordering::Relaxed);
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let start = Instant::now();
        rt.spawn(async move {
            let mut set = FuturesUnordered::new();
            let mut txs = Vec::with_capacity(FU_MEMBERS);
            for i in 0..FU_MEMBERS {
                let (tx, rx) = oneshot::channel::<u32>();
                txs.push(tx);
                set.push(FuMember { rx, counted: false });
                if i % FU_BATCH == FU_BATCH - 1 {
                    tokio::task::yield_now().await;
                }
            }
            *FU_TXS.lock().unwrap() = txs;
            let mut sum = 0u64;
            while let Some(v) = set.next().await {
                sum += v as u64;
            }
            done_tx.send(sum).unwrap();
        });
        let sum = done_rx.recv().unwrap();
        let el = start.elapsed();
        assert_eq!(sum, (FU_MEMBERS as u64) * (FU_MEMBERS as u64 - 1) / 2);
        vec![ns_per(el, FU_MEMBERS)]
    })
}

// joinset: one task spawns JOINSET_TASKS tasks (each returns its index)
// into a JoinSet and joins them all as they finish; ns per task.
const JOINSET_TASKS: usize = 10_000;

fn joinset(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let start = Instant::now();
        let sum = rt.block_on(async {
            tokio::spawn(async {
                let mut set = tokio::task::JoinSet::new();
                for i in 0..JOINSET_TASKS {
                    set.spawn(async move { i });
                }
                let mut sum = 0usize;
                while let Some(r) = set.join_next().await {
                    sum += r.unwrap();
                }
                sum
            })
            .await
            .unwrap()
        });
        let el = start.elapsed();
        assert_eq!(sum, JOINSET_TASKS * (JOINSET_TASKS - 1) / 2);
        vec![ns_per(el, JOINSET_TASKS)]
    })
}

// blockon_spawn_join: from the main thread, spawn a trivial task and await
// its join handle with block_on, BOJ_ROUNDS times in sequence; ns per round.
const BOJ_ROUNDS: usize = 20_000;

fn blockon_spawn_join(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let start = Instant::now();
        let mut sum = 0usize;
        for i in 0..BOJ_ROUNDS {
            sum += rt.block_on(rt.spawn(async move { i + 1 })).unwrap();
        }
        let el = start.elapsed();
        assert_eq!(sum, BOJ_ROUNDS * (BOJ_ROUNDS + 1) / 2);
        vec![ns_per(el, BOJ_ROUNDS)]
    })
}

// fanout_tree: every task spawns FANOUT children and awaits their join
// handles in order; FANOUT_DEPTH levels below the root, so FANOUT^DEPTH
// leaves (each returns 1) and the root sums them; ns per task spawned.
const FANOUT: usize = 10;
const FANOUT_DEPTH: u32 = 6;

fn fanout_node(depth: u32) -> std::pin::Pin<Box<dyn std::future::Future<Output = u64> + Send>> {
    Box::pin(async move {
        if depth == 0 {
            return 1;
        }
        let mut kids = Vec::with_capacity(FANOUT);
        for _ in 0..FANOUT {
            kids.push(tokio::spawn(fanout_node(depth - 1)));
        }
        let mut sum = 0;
        for k in kids {
            sum += k.await.unwrap();
        }
        sum
    })
}

fn fanout_tree(opts: &Opts) -> Vec<Sample> {
    let tasks: usize = (1..=FANOUT_DEPTH).map(|d| FANOUT.pow(d)).sum::<usize>() + 1;
    repeat(opts, |rt| {
        let start = Instant::now();
        let leaves = rt.block_on(async { tokio::spawn(fanout_node(FANOUT_DEPTH)).await.unwrap() });
        let el = start.elapsed();
        assert_eq!(leaves, FANOUT.pow(FANOUT_DEPTH) as u64);
        vec![ns_per(el, tasks)]
    })
}

// file_read: one task reads a 64 MiB file in 64 KiB chunks through
// tokio::fs::File (written to a fresh temp directory first, outside the
// timing, and removed after); MB/s, higher is better.
const FILE_READ_SIZE: usize = 64 << 20;
const FILE_READ_CHUNK: usize = 64 << 10;

fn file_read(opts: &Opts) -> Vec<Sample> {
    repeat(opts, |rt| {
        let dir = std::env::temp_dir().join(format!("tokio-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("file_read mkdir");
        let path = dir.join("data");
        {
            let mut f = std::fs::File::create(&path).expect("file_read create");
            let mut block = vec![0u8; FILE_READ_CHUNK];
            for i in 0..FILE_READ_SIZE / FILE_READ_CHUNK {
                block.fill((i & 0xff) as u8);
                f.write_all(&block).expect("file_read write");
            }
        }
        let p = path.clone();
        let start = Instant::now();
        let total = rt.block_on(async {
            tokio::spawn(async move {
                let mut f = tokio::fs::File::open(&p).await.expect("file_read open");
                let mut buf = vec![0u8; FILE_READ_CHUNK];
                let mut total = 0usize;
                loop {
                    let n = f.read(&mut buf).await.expect("file_read read");
                    if n == 0 {
                        break total;
                    }
                    total += n;
                }
            })
            .await
            .unwrap()
        });
        let el = start.elapsed();
        std::fs::remove_file(&path).expect("file_read remove");
        std::fs::remove_dir(&dir).expect("file_read rmdir");
        assert_eq!(total, FILE_READ_SIZE);
        vec![FILE_READ_SIZE as f64 / 1e6 / el.as_secs_f64()]
    })
}
