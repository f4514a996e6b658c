//! Group commit for posts. One `fdatasync` costs up to ~2 ms on these machines, so a commit
//! per post would cap a node near 500 posts/s. Posts are handed to one writer task, which
//! takes every post waiting at that moment (up to [`MAX_BATCH`]) into one transaction, commits
//! once, and only then answers each of them and publishes their events. If a batch fails, its
//! posts are retried one by one, so one bad post cannot fail the others.

use tokio::sync::{mpsc, oneshot};
use tsunagu_protocol::{RoomId, UserId};

use crate::audit::Event;
use crate::error::{AppError, Result};
use crate::hub::Hub;
use crate::store::{self, EventRow, NewEvent, Store, StoreTx};

/// Most posts in one transaction.
pub(super) const MAX_BATCH: usize = 256;
/// Posts waiting for the writer before callers wait for room.
const QUEUE: usize = 4096;

/// A validated post, ready to be numbered and stored.
pub(super) struct Job {
    pub(super) room: RoomId,
    pub(super) author: UserId,
    pub(super) event: NewEvent,
    /// The audit event, completed with the entry and its number once known.
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

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub(super) struct PostWriter {
    jobs: mpsc::Sender<Job>,
}

impl PostWriter {
    /// Starts the writer task over `store`, publishing to `hub`.
    pub(super) fn start(store: Store, hub: Hub) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, hub, queue));
        Self { jobs }
    }

    /// Stores a post (answered after the commit).
    ///
    /// # Errors
    /// The store's error, or `internal` if the writer is gone.
    pub(super) async fn submit(
        &self,
        room: RoomId,
        author: UserId,
        event: NewEvent,
        audit: Event,
    ) -> Result<Outcome> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            room,
            author,
            event,
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

async fn run(store: Store, hub: Hub, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit(&store, &batch).await {
            Ok(outcomes) => {
                finish(
                    &store,
                    &hub,
                    batch.drain(..).zip(outcomes.into_iter().map(Ok)),
                )
                .await
            }
            Err(error) if batch.len() == 1 => {
                finish(
                    &store,
                    &hub,
                    batch.drain(..).zip(std::iter::once(Err(error))),
                )
                .await;
            }
            Err(error) => {
                tracing::warn!(%error, posts = batch.len(), "a batch of posts failed; retrying them one by one");
                for job in batch.drain(..) {
                    let outcome = commit(&store, std::slice::from_ref(&job))
                        .await
                        .map(|mut o| o.remove(0));
                    finish(&store, &hub, std::iter::once((job, outcome))).await;
                }
            }
        }
    }
}

/// Stores `jobs` in one transaction.
async fn commit(store: &Store, jobs: &[Job]) -> store::Result<Vec<Outcome>> {
    let mut tx = store.begin().await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        outcomes.push(store_one(&mut tx, job).await?);
    }
    tx.commit().await?;
    Ok(outcomes)
}

async fn store_one(tx: &mut StoreTx, job: &Job) -> store::Result<Outcome> {
    if let Some(client_id) = job.event.client_id.as_deref()
        && let Some(existing) = tx.client_post(job.room, job.author, client_id).await?
    {
        return Ok(Outcome::Duplicate(Box::new(existing)));
    }
    let (seq, public_seq) = tx.append_event(&job.event).await?;
    job.audit
        .clone()
        .reason(format!("entry={};seq={seq}", job.event.entry_id))
        .append(tx)
        .await?;
    Ok(Outcome::Stored { seq, public_seq })
}

/// Answers each post and publishes the stored ones, room by room, in sequence order.
async fn finish(
    store: &Store,
    hub: &Hub,
    results: impl Iterator<Item = (Job, store::Result<Outcome>)>,
) {
    let mut published: Vec<(RoomId, i64, i64)> = Vec::new();
    for (job, outcome) in results {
        if let Ok(Outcome::Stored { seq, .. }) = &outcome {
            match published.iter_mut().find(|(room, ..)| *room == job.room) {
                Some((_, first, last)) => {
                    *first = (*first).min(*seq);
                    *last = (*last).max(*seq);
                }
                None => published.push((job.room, *seq, *seq)),
            }
        }
        // The caller may have gone (a closed socket); the post stands all the same.
        let _ = job.reply.send(outcome.map_err(AppError::from));
    }
    for (room, first, last) in published {
        if let Err(error) = super::publish_committed(store, hub, room, first, last).await {
            tracing::warn!(%error, "committed posts could not be published live");
        }
    }
}
