//! `tsunagu-bench`: the benchmark workload of `shared/bench/workload.md` against a Tsunagu
//! server. Setup is not timed; then every member of every room holds a live, subscribed
//! socket, one member per room posts (each post after the previous one is acknowledged), one
//! other member is measured, and one JSON line of figures is printed per scenario. Exits
//! non-zero if any post is lost, duplicated or delivered out of order.

mod setup;
mod socket;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;
use tsunagu_protocol::timeline::{Change, EntryKind, Visibility};
use tsunagu_protocol::ws::{ClientFrame, ServerFrame};
use tsunagu_protocol::{ClientPostId, RoomId};

use setup::{BenchRoom, POSTER, READER, Server};
use socket::Socket;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    S1,
    S2,
    S3,
    S4,
    S5,
    All,
}

impl Scenario {
    /// Rooms and posts per room of the workload (`All` runs each scenario with its own).
    fn shape(self) -> (usize, usize) {
        match self {
            Scenario::S1 => (1, 1000),
            Scenario::S2 => (200, 100),
            Scenario::S3 => (2000, 10),
            Scenario::S4 => (10_000, 0),
            Scenario::S5 | Scenario::All => (1, 10_000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Db {
    Sqlite,
    Postgres,
}

/// The Tsunagu load generator.
#[derive(Debug, Parser)]
#[command(name = "tsunagu-bench", version)]
struct Args {
    /// S1, S2, S3, S4, S5 or all.
    #[arg(long, value_enum, ignore_case = true)]
    scenario: Scenario,
    /// A running server; without it one is started on a fresh data directory.
    #[arg(long)]
    server: Option<String>,
    #[arg(long, value_enum, ignore_case = true, default_value = "sqlite")]
    db: Db,
    /// PostgreSQL URL for `--db postgres`.
    #[arg(long)]
    database_url: Option<String>,
    /// Data directory for a started server (kept); a temporary one otherwise.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Every post's body starts with `MARKER-room-n `.
    #[arg(long, default_value = "BENCH")]
    marker: String,
    /// Rooms (overrides the scenario's).
    #[arg(long)]
    rooms: Option<usize>,
    /// Posts per room (overrides the scenario's).
    #[arg(long)]
    posts: Option<usize>,
    /// Server processes on the one PostgreSQL database (started ones only). Each room's
    /// poster connects to one node and its measured reader to the next, so that every
    /// measured delivery crosses from node to node; the other members are spread round-robin.
    /// A list (`1,2`) runs the scenario once per count on one set-up, in that order.
    #[arg(long, value_delimiter = ',', default_value = "1",
        value_parser = clap::value_parser!(u8).range(1..=8))]
    nodes: Vec<u8>,
}

/// A post body of exactly `SIZE` bytes: the marker prefix, then Japanese and ASCII filler.
const SIZE: usize = 200;

fn body(marker: &str, room: usize, i: usize) -> String {
    let mut text = format!("{marker}-room-{room} {i} ");
    for c in "訪問看護: vitals stable, 食欲あり。BP 128/76 "
        .chars()
        .cycle()
    {
        if text.len() + c.len_utf8() > SIZE {
            break;
        }
        text.push(c);
    }
    while text.len() < SIZE {
        text.push('.');
    }
    text
}

/// The post number in a body made by [`body`] for `room`, if it is one.
fn post_number(text: &str, marker: &str, room: usize) -> Option<usize> {
    let rest = text.strip_prefix(&format!("{marker}-room-{room} "))?;
    rest.split(' ').next()?.parse().ok()
}

struct Figures {
    posts: usize,
    elapsed: Duration,
    acks: Vec<Duration>,
    fanouts: Vec<Duration>,
    connections: usize,
    catchup: Option<Duration>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let scenarios = match args.scenario {
        Scenario::All => vec![
            Scenario::S1,
            Scenario::S2,
            Scenario::S3,
            Scenario::S4,
            Scenario::S5,
        ],
        one => vec![one],
    };
    for scenario in scenarios {
        if let Err(error) = run(&args, scenario).await {
            eprintln!("tsunagu-bench: {scenario:?} failed: {error:#}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

async fn run(args: &Args, scenario: Scenario) -> Result<()> {
    let (rooms, posts) = scenario.shape();
    let (rooms, posts) = (args.rooms.unwrap_or(rooms), args.posts.unwrap_or(posts));
    let database_url = match args.db {
        Db::Sqlite => None,
        Db::Postgres => Some(
            args.database_url
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--db postgres needs --database-url"))?,
        ),
    };
    let server = match &args.server {
        Some(url) => Server::external(url.clone(), args.data_dir.clone(), database_url),
        None => Server::spawn(args.data_dir.clone(), database_url).await?,
    };
    let counts = args.nodes.clone();
    if counts.iter().any(|&n| n > 1) && args.server.is_some() {
        bail!("--nodes starts its servers itself: leave out --server");
    }
    eprintln!("setting up {rooms} rooms…");
    let setup_started = Instant::now();
    let bench_rooms = setup::rooms(&server, rooms).await?;
    eprintln!("set up in {:.1} s", setup_started.elapsed().as_secs_f64());
    // One set-up, then the scenario once per node count, in the order given: the runs
    // compare the same rooms, users and database (give `1,2` and `2,1` to see the effect of
    // the order).
    let mut others: Vec<Server> = Vec::new();
    for (run, count) in counts.iter().copied().enumerate() {
        while others.len() + 1 < usize::from(count) {
            others.push(server.spawn_another_node().await?);
        }
        while others.len() + 1 > usize::from(count) {
            if let Some(node) = others.pop() {
                node.stop().await;
            }
        }
        let nodes: Vec<String> = std::iter::once(server.url.clone())
            .chain(others.iter().map(|node| node.url.clone()))
            .collect();
        let marker = if counts.len() > 1 {
            format!("{}{run}r{count}n", args.marker)
        } else {
            args.marker.clone()
        };
        let rss_of_all = || -> Option<f64> {
            std::iter::once(&server)
                .chain(&others)
                .map(Server::rss_mb)
                .sum::<Option<f64>>()
        };
        let rss_before = rss_of_all();
        let figures = match scenario {
            Scenario::S5 => catch_up(&bench_rooms, &nodes, posts, &marker).await?,
            _ => live(&bench_rooms, &nodes, posts, &marker).await?,
        };
        let rss = rss_of_all();
        if let (Some(before), Some(after)) = (rss_before, rss)
            && figures.connections > 0
        {
            // What the connections (and, with posts, everything else of the run) added to
            // the servers' resident memory, per connection.
            eprintln!(
                "server RSS {before:.1} MB before connecting, {after:.1} MB after: {:.1} KiB per connection",
                (after - before) * 1024.0 / figures.connections as f64
            );
        }
        let (mut acks, mut fanouts) = (figures.acks, figures.fanouts);
        let per_second =
            (figures.posts > 0).then(|| figures.posts as f64 / figures.elapsed.as_secs_f64());
        let line = json!({
            "scenario": format!("{scenario:?}"),
            "db": match args.db { Db::Sqlite => "sqlite", Db::Postgres => "postgres" },
            "nodes": nodes.len(),
            "rooms": rooms,
            "members": setup::ROLES.len(),
            "posts": figures.posts,
            "size": SIZE,
            "posts_per_s": per_second.map(|v| (v * 10.0).round() / 10.0),
            "ack_p50_ms": stats::percentile_ms(&mut acks, 50.0),
            "ack_p99_ms": stats::percentile_ms(&mut acks, 99.0),
            "fanout_p50_ms": stats::percentile_ms(&mut fanouts, 50.0),
            "fanout_p99_ms": stats::percentile_ms(&mut fanouts, 99.0),
            "connections": figures.connections,
            "server_rss_mb": rss.map(|v| (v * 10.0).round() / 10.0),
            "catchup_ms": figures.catchup.map(|d| (d.as_secs_f64() * 1000.0).round()),
        });
        println!("{line}");
    }
    for node in others {
        node.stop().await;
    }
    server.stop().await;
    Ok(())
}

/// The node member `i` of room `n` connects to: the poster to one node, the measured reader
/// to the next, the others round-robin.
fn node_of(nodes: &[String], n: usize, i: usize) -> &str {
    let offset = match i {
        POSTER => 0,
        READER => 1,
        other => other,
    };
    &nodes[(n + offset) % nodes.len()]
}

/// Opens a subscribed socket for every member of every room.
async fn connect_all(
    rooms: &[BenchRoom],
    nodes: &[String],
    skip_reader: bool,
) -> Result<Vec<Vec<Option<Socket>>>> {
    let mut all = Vec::with_capacity(rooms.len());
    for (n, room) in rooms.iter().enumerate() {
        let mut sockets = Vec::with_capacity(room.members.len());
        for (i, member) in room.members.iter().enumerate() {
            if skip_reader && i == READER {
                sockets.push(None);
                continue;
            }
            let mut socket = Socket::open(member, node_of(nodes, n, i)).await?;
            subscribe(&mut socket, room.id).await?;
            sockets.push(Some(socket));
        }
        all.push(sockets);
    }
    Ok(all)
}

async fn subscribe(socket: &mut Socket, room: RoomId) -> Result<()> {
    socket
        .send(&ClientFrame::Subscribe { room, since: 0 })
        .await?;
    loop {
        match socket.frames.recv().await {
            Some((_, ServerFrame::Subscribed { .. })) => return Ok(()),
            Some((_, ServerFrame::Error { code, .. })) => bail!("subscribe refused: {code}"),
            Some(_) => {}
            None => bail!("socket closed while subscribing"),
        }
    }
}

/// Posts `posts` entries in each room, one after another per room, all rooms at once.
async fn live(
    rooms: &[BenchRoom],
    nodes: &[String],
    posts: usize,
    marker: &str,
) -> Result<Figures> {
    let mut sockets = connect_all(rooms, nodes, false).await?;
    let connections = sockets.iter().map(|r| r.iter().flatten().count()).sum();
    if posts == 0 {
        // S4: idle connections only; give the server a moment to settle.
        tokio::time::sleep(Duration::from_secs(2)).await;
        return Ok(Figures {
            posts: 0,
            elapsed: Duration::ZERO,
            acks: Vec::new(),
            fanouts: Vec::new(),
            connections,
            catchup: None,
        });
    }
    let epoch = Instant::now();
    let mut posters = Vec::new();
    let mut readers = Vec::new();
    let mut drains = Vec::new();
    for (n, (room, room_sockets)) in rooms.iter().zip(sockets.iter_mut()).enumerate() {
        let sent: Arc<Vec<AtomicU64>> = Arc::new((0..posts).map(|_| AtomicU64::new(0)).collect());
        for (i, slot) in room_sockets.iter_mut().enumerate() {
            let Some(socket) = slot.take() else { continue };
            let (marker, sent, room_id) = (marker.to_owned(), sent.clone(), room.id);
            match i {
                POSTER => posters.push(tokio::spawn(post_all(
                    socket, room_id, n, posts, marker, sent, epoch,
                ))),
                READER => readers.push(tokio::spawn(read_all(
                    socket, n, posts, marker, sent, epoch,
                ))),
                _ => drains.push(tokio::spawn(read_all(
                    socket, n, posts, marker, sent, epoch,
                ))),
            }
        }
    }
    let mut acks = Vec::with_capacity(rooms.len() * posts);
    let mut last_ack = Duration::ZERO;
    for poster in posters {
        let (room_acks, finished) = poster.await??;
        acks.extend(room_acks);
        last_ack = last_ack.max(finished);
    }
    let mut fanouts = Vec::with_capacity(rooms.len() * posts);
    for reader in readers {
        fanouts.extend(reader.await??);
    }
    for drain in drains {
        drain.await??;
    }
    Ok(Figures {
        posts: acks.len(),
        elapsed: last_ack,
        acks,
        fanouts,
        connections,
        catchup: None,
    })
}

async fn post_all(
    mut socket: Socket,
    room: RoomId,
    n: usize,
    posts: usize,
    marker: String,
    sent: Arc<Vec<AtomicU64>>,
    epoch: Instant,
) -> Result<(Vec<Duration>, Duration)> {
    let mut acks = Vec::with_capacity(posts);
    let mut previous: Option<u64> = None;
    for i in 0..posts {
        let client_id = ClientPostId::generate();
        let frame = ClientFrame::Post {
            room,
            client_id,
            kind: EntryKind::Text,
            visibility: Visibility::Everyone,
            text: body(&marker, n, i),
        };
        let started = Instant::now();
        sent[i].store(
            u64::try_from(started.duration_since(epoch).as_nanos()).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        socket.send(&frame).await?;
        loop {
            match socket.frames.recv().await {
                Some((at, ServerFrame::Posted { entry, .. })) if entry.client_id == client_id => {
                    if entry.duplicate || previous.is_some_and(|p| entry.seq != p + 1) {
                        bail!(
                            "room {n}: post {i} got seq {} after {previous:?} (duplicate: {})",
                            entry.seq,
                            entry.duplicate
                        );
                    }
                    previous = Some(entry.seq);
                    acks.push(at.duration_since(started));
                    break;
                }
                Some((_, ServerFrame::Error { code, .. })) => {
                    bail!("room {n}: post {i} refused: {code}")
                }
                Some(_) => {}
                None => bail!("room {n}: the poster's socket closed"),
            }
        }
    }
    Ok((acks, epoch.elapsed()))
}

/// Reads until all `posts` marked posts of room `n` have arrived, in order, each once.
async fn read_all(
    mut socket: Socket,
    n: usize,
    posts: usize,
    marker: String,
    sent: Arc<Vec<AtomicU64>>,
    epoch: Instant,
) -> Result<Vec<Duration>> {
    let mut fanouts = Vec::with_capacity(posts);
    let mut expected = 0;
    while expected < posts {
        let next = tokio::time::timeout(Duration::from_secs(120), socket.frames.recv()).await;
        let Ok(Some((at, frame))) = next else {
            bail!("room {n}: only {expected} of {posts} posts arrived");
        };
        if let ServerFrame::Event { event, .. } = frame
            && let Change::Posted { text, .. } = &event.change
            && let Some(i) = post_number(text, &marker, n)
        {
            if i != expected {
                bail!(
                    "room {n}: post {i} arrived when {expected} was due (lost, duplicated or reordered)"
                );
            }
            let sent_at = Duration::from_nanos(sent[i].load(Ordering::Acquire));
            fanouts.push(at.duration_since(epoch).saturating_sub(sent_at));
            expected += 1;
        }
    }
    Ok(fanouts)
}

/// S5: the reader is offline while `posts` are posted; then it connects and catches up.
async fn catch_up(
    rooms: &[BenchRoom],
    nodes: &[String],
    posts: usize,
    marker: &str,
) -> Result<Figures> {
    let mut sockets = connect_all(rooms, nodes, true).await?;
    let connections = sockets
        .iter()
        .map(|r| r.iter().flatten().count())
        .sum::<usize>()
        + rooms.len();
    let epoch = Instant::now();
    let room = &rooms[0];
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..posts).map(|_| AtomicU64::new(0)).collect());
    let poster = sockets[0][POSTER]
        .take()
        .ok_or_else(|| anyhow::anyhow!("no poster socket"))?;
    let drains: Vec<_> = sockets[0]
        .iter_mut()
        .filter_map(Option::take)
        .map(|socket| {
            tokio::spawn(read_all(
                socket,
                0,
                posts,
                marker.to_owned(),
                sent.clone(),
                epoch,
            ))
        })
        .collect();
    let (acks, finished) = post_all(
        poster,
        room.id,
        0,
        posts,
        marker.to_owned(),
        sent.clone(),
        epoch,
    )
    .await?;
    for drain in drains {
        drain.await??;
    }
    let mut reader = Socket::open(&room.members[READER], node_of(nodes, 0, READER)).await?;
    let started = Instant::now();
    subscribe(&mut reader, room.id).await?;
    read_all(reader, 0, posts, marker.to_owned(), sent, epoch).await?;
    let catchup = started.elapsed();
    Ok(Figures {
        posts: acks.len(),
        elapsed: finished,
        acks,
        fanouts: Vec::new(),
        connections,
        catchup: Some(catchup),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_200_bytes_with_a_findable_number() {
        for i in [0, 7, 999, 123_456] {
            let text = body("MARK", 42, i);
            assert_eq!(text.len(), SIZE);
            assert_eq!(post_number(&text, "MARK", 42), Some(i));
            assert_eq!(post_number(&text, "MARK", 4), None);
        }
    }
}
