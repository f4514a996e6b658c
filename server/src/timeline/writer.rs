//! Group commit for posts. One `fdatasync` costs up to ~2 ms on these machines, so a commit
//! per post would cap a node near 500 posts/s. Posts are handed to one writer task, which
//! takes every post waiting at that moment (up to [`MAX_BATCH`]) into one transaction, commits
//! once, and only then answers each of them and publishes their events.
//!
//! A batch costs a handful of statements whatever its size: one read of the posters'
//! memberships and their rooms' consent, one read of earlier posts under the same client ids,
//! one update numbering every room of the batch, one insert of the events and one of their
//! audit records. The checks are made inside the transaction, so a post is judged by what it
//! commits with (a member removed a moment earlier cannot slip a post in). If a batch fails,
//! its posts are retried one by one, so one bad post cannot fail the others.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;
use tsunagu_protocol::rooms::ConsentState;
use tsunagu_protocol::{AttachmentId, RoomId};

use crate::audit::{self, Event};
use crate::error::{AppError, Result};
use crate::hub::Hub;
use crate::keys::RoomKeys;
use crate::rooms::access;
use crate::store::{self, EventRow, KeyUse, NewEvent, PosterRow, RoomAdvance, Store};

/// Most posts in one transaction.
pub(super) const MAX_BATCH: usize = 256;
/// Posts waiting for the writer before callers wait for room.
const QUEUE: usize = 4096;

/// A validated post, ready to be checked, numbered and stored.
pub(super) struct Job {
    pub(super) room: RoomId,
    pub(super) event: NewEvent,
    /// Attachments to bind to the post in its transaction.
    pub(super) attachments: Vec<AttachmentId>,
    /// The audit event of its success, completed with the entry and its number once known.
    pub(super) audit: Event,
    pub(super) reply: oneshot::Sender<Result<Outcome>>,
}

/// What became of a post.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Stored now, with its numbers in the full and public streams.
    Stored { seq: i64, public_seq: Option<i64> },
    /// A post with the same client id was already stored (a retry): here it is.
    Duplicate(Box<EventRow>),
}

/// What the writer decided for one post of a batch.
enum Decision {
    /// To be stored, as the `n`-th new event of its room in this batch (and the
    /// `public_n`-th of its public stream).
    Store {
        poster: usize,
        n: i64,
        public_n: Option<i64>,
    },
    /// Already stored, before this batch.
    Duplicate(Box<EventRow>),
    /// The same client id as an earlier post of this batch (a quick retry).
    DuplicateOf(usize),
    /// Refused; refusals of access, and for want of consent or a closed room, are audited
    /// with the batch.
    Refuse(AppError),
}

/// A stored post: its numbers and its author as the hub publishes them.
struct Stored {
    seq: i64,
    public_seq: Option<i64>,
    poster: usize,
}

/// What a committed batch gives back to its posts.
struct Committed {
    /// Per post: the stored numbers or the answer.
    results: Vec<std::result::Result<Stored, Answer>>,
    posters: Vec<PosterRow>,
}

/// An answer that is not a newly stored post.
enum Answer {
    Duplicate(Box<EventRow>),
    Refused(AppError),
}

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub(super) struct PostWriter {
    jobs: mpsc::Sender<Job>,
}

impl PostWriter {
    /// Starts the writer over `store`, publishing to `hub`.
    ///
    /// The writer runs on a thread of its own with a runtime of its own: on the shared
    /// runtime, each of its awaits on the database would queue behind the tasks of every
    /// socket, and a batch would take many times longer than its statements do. It stops
    /// when the last handle is dropped.
    ///
    /// # Errors
    /// The thread or its runtime could not be started.
    pub(super) fn start(store: Store, hub: Hub, keys: RoomKeys) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("post-writer".into())
            .spawn(move || runtime.block_on(run(store, hub, keys, queue)))?;
        Ok(Self { jobs })
    }

    /// Stores a post (answered after the commit).
    ///
    /// # Errors
    /// `not_found` (no such room), `forbidden` (not an accepted member), `conflict` (no
    /// consent in force), the store's error, or `internal` if the writer is gone.
    pub(super) async fn submit(
        &self,
        room: RoomId,
        event: NewEvent,
        attachments: Vec<AttachmentId>,
        audit: Event,
    ) -> Result<Outcome> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            room,
            event,
            attachments,
            audit,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| AppError::Internal("post writer stopped"))?;
        answer
            .await
            .map_err(|_| AppError::Internal("post writer stopped"))?
    }
}

async fn run(store: Store, hub: Hub, keys: RoomKeys, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let span = tracing::info_span!("post batch", posts = batch.len());
        match commit(&store, &keys, &batch).instrument(span).await {
            Ok(committed) => finish(&hub, std::mem::take(&mut batch), Ok(committed)),
            Err(error) if batch.len() == 1 => {
                finish(&hub, std::mem::take(&mut batch), Err(error));
            }
            Err(error) => {
                tracing::warn!(%error, posts = batch.len(), "a batch of posts failed; retrying them one by one");
                for job in batch.drain(..) {
                    let jobs = vec![job];
                    let committed = commit(&store, &keys, &jobs).await;
                    finish(&hub, jobs, committed);
                }
            }
        }
    }
}

/// Checks, numbers, seals, stores and audits `jobs` in one transaction.
async fn commit(store: &Store, keys: &RoomKeys, jobs: &[Job]) -> Result<Committed> {
    let started = std::time::Instant::now();
    let mut tx = store.begin().await?;

    // Who posts where: one read for the whole batch.
    let mut pairs: Vec<(String, String)> = jobs
        .iter()
        .map(|job| (job.event.room_id.clone(), job.event.author_id.clone()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let begun = started.elapsed();
    let posters = tx.posters(&pairs).await?;
    let read_posters = started.elapsed();
    let poster_of: HashMap<(&str, &str), usize> = posters
        .iter()
        .enumerate()
        .map(|(i, p)| ((p.room_id.as_str(), p.user_id.as_str()), i))
        .collect();

    // Retries: one read for the whole batch.
    let client_keys: Vec<(String, String, String)> = jobs
        .iter()
        .filter_map(|job| {
            let client_id = job.event.client_id.clone()?;
            Some((
                job.event.room_id.clone(),
                job.event.author_id.clone(),
                client_id,
            ))
        })
        .collect();
    let mut earlier = if client_keys.is_empty() {
        Vec::new()
    } else {
        tx.client_posts(&client_keys).await?
    };
    for (room, row) in &mut earlier {
        let room: RoomId = room
            .parse()
            .map_err(|_| store::Error::Corrupt("room id".into()))?;
        crate::timeline::open_events(keys, store, None, room, std::slice::from_mut(row)).await?;
    }
    let checked = started.elapsed();

    let mut decisions = Vec::with_capacity(jobs.len());
    let mut rooms: Vec<RoomAdvance> = Vec::new();
    let mut in_batch: HashMap<(&str, &str, &str), usize> = HashMap::new();
    let mut audits = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.iter().enumerate() {
        let event = &job.event;
        let client_id = event.client_id.as_deref();
        let key = (
            event.room_id.as_str(),
            event.author_id.as_str(),
            client_id.unwrap_or(""),
        );
        let Some(&poster) = poster_of.get(&(key.0, key.1)) else {
            decisions.push(Decision::Refuse(AppError::NotFound));
            continue;
        };
        if posters[poster].member_state.as_deref() != Some("accepted") {
            audits.push(
                job.audit
                    .clone()
                    .outcome(audit::Outcome::Refused)
                    .into_record(),
            );
            decisions.push(Decision::Refuse(AppError::Forbidden));
            continue;
        }
        if client_id.is_some() {
            if let Some((_, row)) = earlier.iter().find(|(room, row)| {
                room == key.0 && row.author_id == key.1 && row.client_id.as_deref() == client_id
            }) {
                decisions.push(Decision::Duplicate(Box::new(row.clone())));
                continue;
            }
            if let Some(&first) = in_batch.get(&key) {
                decisions.push(Decision::DuplicateOf(first));
                continue;
            }
        }
        // Refused by the room's state: recorded with the batch, like refusals of access.
        let refusal = if posters[poster].closed_at.is_some() {
            Some(("room_closed", super::room_closed()))
        } else if access::consent_state(posters[poster].consent_state.as_deref())
            != ConsentState::Given
        {
            Some(("no_consent", super::no_consent()))
        } else {
            None
        };
        if let Some((reason, error)) = refusal {
            audits.push(
                job.audit
                    .clone()
                    .outcome(audit::Outcome::Refused)
                    .reason(reason)
                    .into_record(),
            );
            decisions.push(Decision::Refuse(error));
            continue;
        }
        if client_id.is_some() {
            in_batch.insert(key, index);
        }
        let public = event.visibility == "everyone";
        let position = match rooms.iter().position(|r| r.room_id == event.room_id) {
            Some(position) => position,
            None => {
                rooms.push(RoomAdvance {
                    room_id: event.room_id.clone(),
                    events: 0,
                    public_events: 0,
                });
                rooms.len() - 1
            }
        };
        let room = &mut rooms[position];
        room.events += 1;
        room.public_events += i64::from(public);
        decisions.push(Decision::Store {
            poster,
            n: room.events,
            public_n: public.then_some(room.public_events),
        });
    }

    // Number every room of the batch at once; its events take the numbers below the new ends.
    let counts: HashMap<String, (i64, i64)> = rooms
        .iter()
        .map(|r| (r.room_id.clone(), (r.events, r.public_events)))
        .collect();
    let ends = if rooms.is_empty() {
        Vec::new()
    } else {
        tx.advance_rooms(&mut rooms).await?
    };
    // Each room's current key, counted with this batch's events by the numbering above.
    let mut sealing = HashMap::with_capacity(ends.len());
    for end in &ends {
        let used = KeyUse {
            version: end.key_version,
            uses: end.key_uses,
            created_at: end.key_created_at,
        };
        sealing.insert(
            end.room_id.as_str(),
            (keys.current_key(&end.room_id, used).await?, used),
        );
    }
    let before: HashMap<&str, (i64, i64)> = ends
        .iter()
        .filter_map(|end| {
            let (events, public) = counts.get(&end.room_id)?;
            Some((
                end.room_id.as_str(),
                (end.last_seq - events, end.last_public_seq - public),
            ))
        })
        .collect();
    let mut results: Vec<std::result::Result<Stored, Answer>> = Vec::with_capacity(jobs.len());
    let mut inserts = Vec::with_capacity(jobs.len());
    for (job, decision) in jobs.iter().zip(decisions) {
        let result = match decision {
            Decision::Store {
                poster,
                n,
                public_n,
            } => {
                let &(seq_before, public_before) = before
                    .get(job.event.room_id.as_str())
                    .ok_or_else(|| store::Error::Corrupt("room numbering".into()))?;
                let seq = seq_before + n;
                let public_seq = public_n.map(|k| public_before + k);
                let (key, _) = sealing
                    .get(job.event.room_id.as_str())
                    .ok_or_else(|| store::Error::Corrupt("room key".into()))?;
                let mut sealed = job.event.clone();
                sealed.body = key.seal(&super::new_event_context(&job.event), &job.event.body)?;
                inserts.push((sealed, seq, public_seq));
                audits.push(
                    job.audit
                        .clone()
                        .reason(format!("entry={};seq={seq}", job.event.entry_id))
                        .into_record(),
                );
                Ok(Stored {
                    seq,
                    public_seq,
                    poster,
                })
            }
            Decision::Duplicate(row) => Err(Answer::Duplicate(row)),
            // A quick retry answers with the post it repeats, stored earlier in this batch.
            Decision::DuplicateOf(first) => match &results[first] {
                Ok(stored) => Err(Answer::Duplicate(Box::new(stored_row(
                    &jobs[first].event,
                    stored,
                    &posters,
                )))),
                Err(_) => return Err(store::Error::Corrupt("batch retry".into()).into()),
            },
            Decision::Refuse(error) => Err(Answer::Refused(error)),
        };
        results.push(result);
    }

    let numbered = started.elapsed();
    if !inserts.is_empty() {
        let inserts: Vec<(&NewEvent, i64, Option<i64>)> = inserts
            .iter()
            .map(|(event, seq, public_seq)| (event, *seq, *public_seq))
            .collect();
        tx.insert_events(&inserts).await?;
    }
    // A key that reached its rotation point gives way to a new version for the next seals.
    for (room, (_, used)) in &sealing {
        keys.rotate_if_due(&mut tx, room, *used).await?;
    }
    // Attachments are bound to their stored posts; one no longer free fails the batch, whose
    // posts are then retried one by one.
    for (job, result) in jobs.iter().zip(&results) {
        if result.is_ok() && !job.attachments.is_empty() {
            let event = &job.event;
            tx.bind_attachments(
                &event.room_id,
                &event.author_id,
                &event.entry_id,
                &job.attachments,
            )
            .await?;
        }
    }
    if !audits.is_empty() {
        tx.append_audits(&audits).await?;
    }
    let written = started.elapsed();
    tx.commit().await?;
    let metrics = crate::metrics::get();
    metrics.commit_batch_size.observe(jobs.len() as f64);
    metrics
        .commit_seconds
        .observe(crate::metrics::seconds(started.elapsed()));
    tracing::debug!(
        posts = jobs.len(),
        rooms = rooms.len(),
        begun_us = begun.as_micros(),
        posters_us = read_posters.as_micros(),
        checked_us = checked.as_micros(),
        numbered_us = numbered.as_micros(),
        written_us = written.as_micros(),
        committed_us = started.elapsed().as_micros(),
        "post batch committed"
    );
    Ok(Committed { results, posters })
}

/// The published shape of a stored post.
fn stored_row(event: &NewEvent, stored: &Stored, posters: &[PosterRow]) -> EventRow {
    let poster = &posters[stored.poster];
    EventRow {
        seq: stored.seq,
        public_seq: stored.public_seq,
        entry_id: event.entry_id.clone(),
        change: event.change.to_owned(),
        entry_kind: event.entry_kind.map(str::to_owned),
        visibility: event.visibility.to_owned(),
        version: event.version,
        author_id: event.author_id.clone(),
        author_role: event.author_role.clone(),
        author_organisation_id: event.author_organisation_id.clone(),
        author_name: poster.display_name.clone(),
        author_organisation_name: poster.organisation_name.clone(),
        client_id: event.client_id.clone(),
        body: event.body.clone(),
        created_at: event.created_at,
    }
}

/// Answers each post and publishes the stored ones, room by room, in sequence order.
fn finish(hub: &Hub, jobs: Vec<Job>, committed: Result<Committed>) {
    let committed = match committed {
        Ok(committed) => committed,
        Err(error) => {
            // Only ever one post here: batches that fail are retried one post at a time.
            let mut error = Some(error);
            crate::metrics::get().posts("refused", jobs.len() as u64);
            for job in jobs {
                let answer = error
                    .take()
                    .unwrap_or(AppError::Internal("post batch failed"));
                let _ = job.reply.send(Err(answer));
            }
            return;
        }
    };
    let mut published: Vec<(RoomId, Vec<EventRow>)> = Vec::new();
    let (mut stored_posts, mut duplicates, mut refused) = (0, 0, 0);
    for (job, result) in jobs.into_iter().zip(committed.results) {
        match &result {
            Ok(_) => stored_posts += 1,
            Err(Answer::Duplicate(_)) => duplicates += 1,
            Err(Answer::Refused(_)) => refused += 1,
        }
        let answer = match result {
            Ok(stored) => {
                let row = stored_row(&job.event, &stored, &committed.posters);
                match published.iter_mut().find(|(room, _)| *room == job.room) {
                    Some((_, rows)) => rows.push(row),
                    None => published.push((job.room, vec![row])),
                }
                Ok(Outcome::Stored {
                    seq: stored.seq,
                    public_seq: stored.public_seq,
                })
            }
            Err(Answer::Duplicate(row)) => Ok(Outcome::Duplicate(row)),
            Err(Answer::Refused(error)) => Err(error),
        };
        // The caller may have gone (a closed socket); the post stands all the same.
        let _ = job.reply.send(answer);
    }
    let metrics = crate::metrics::get();
    metrics.posts("stored", stored_posts);
    metrics.posts("duplicate", duplicates);
    metrics.posts("refused", refused);
    for (room, rows) in published {
        hub.publish(room, rows);
    }
}
