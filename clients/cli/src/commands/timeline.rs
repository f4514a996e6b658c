//! The timeline commands: `post`, `history`, `tail`, `ack`, `acks`, `edit`, `delete`,
//! `versions` and `read`.
//!
//! Posts are named on the command line by their number (`#12`) in the caller's own stream,
//! as `history` shows them; the commands that act on a post look the number up with a
//! one-event timeline read and refuse, with a clear message, a number that is a correction, a
//! deletion or a system event. Family members and patients have a stream of their own, so the
//! same post has different numbers for them and for professionals.
//!
//! `tail` follows the timeline through an [`EventSource`]: by default [`Live`], the
//! WebSocket (events as they happen, resumed and reconnected by the client library without
//! losing or repeating any); with `--poll`, [`Polling`], which asks for new events every few
//! seconds. Either way events are printed by the [`TimelineView`] that `history` uses.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::time::Duration;

use tsunagu_client::live::{LiveClient, LiveError, LiveEvent, LiveOptions};
use tsunagu_client::{ClientError, MAX_TIMELINE_PAGE, Session};
use tsunagu_protocol::attachments::Attachment;
use tsunagu_protocol::timeline::{
    Change, EditEntryRequest, EntryKind, MarkReadRequest, PostEntryRequest,
    PostEntryWithAttachments, PostedEntry, TimelineEvent, TimelinePage,
};
use tsunagu_protocol::{ClientPostId, ErrorCode, RoomId};

use super::{Context, attachments};
use crate::cli::{DeleteArgs, EditArgs, EntryArgs, HistoryArgs, PostArgs, TailArgs};
use crate::credentials::Credentials;
use crate::error::{CliError, client_exit_code, exit};
use crate::output::{self, TimelineView};

/// `tsunagu post`: a fresh client id unless one is given, so that a script can retry with
/// the same id and never post twice. Files given with `--attach` are checked, uploaded, then
/// bound to the post (a retry uploads them again; the server recognises the same files).
pub(super) async fn post(ctx: &Context, args: PostArgs) -> Result<(), CliError> {
    let text = text_argument(&args.text, io::stdin().lock(), !args.attach.is_empty())?;
    let files = attachments::checked_files(&args.attach)?;
    let request = PostEntryRequest {
        client_id: args.client_id.unwrap_or_else(ClientPostId::generate),
        kind: if args.urgent {
            EntryKind::Urgent
        } else {
            EntryKind::Text
        },
        visibility: args.visibility.into(),
        text,
    };
    let room = args.room;
    let (posted, attached) = ctx
        .call(async |s| {
            let attached = attachments::upload(s, room, &files).await?;
            let posted = if attached.is_empty() {
                s.post_entry(room, &request).await?
            } else {
                let body = PostEntryWithAttachments {
                    entry: request.clone(),
                    attachments: attached.iter().map(|a| a.attachment_id).collect(),
                };
                s.post_entry_with_attachments(room, &body).await?
            };
            Ok((posted, attached))
        })
        .await?;
    let shown = Posted {
        posted: &posted,
        attachments: &attached,
    };
    ctx.out().value(&shown, || {
        let mut text = output::posted(&posted);
        for attachment in &attached {
            text.push_str(&output::attachment(attachment));
            text.push('\n');
        }
        text
    })
}

/// What `tsunagu post --json` prints: the answer, with the attachments when there are any.
#[derive(Debug, serde::Serialize)]
struct Posted<'a> {
    #[serde(flatten)]
    posted: &'a PostedEntry,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    attachments: &'a [Attachment],
}

/// `tsunagu history`: one page with `--limit`, otherwise everything up to the newest event.
/// `--json` prints the events as an array either way.
pub(super) async fn history(ctx: &Context, args: HistoryArgs) -> Result<(), CliError> {
    let (room, after) = (args.room, args.after);
    let (events, more) = ctx
        .call(async |s| match args.limit {
            Some(limit) => {
                let page = s.timeline(room, after, limit).await?;
                let more = remaining(&page);
                Ok((page.events, more))
            }
            None => Ok((s.timeline_all(room, after).await?, None)),
        })
        .await?;
    let out = ctx.out();
    out.value(&events, || TimelineView::new().render_all(&events))?;
    if let Some((last, head)) = more {
        out.notice(&format!(
            "\n続きがあります（最新は #{head}）: --after {last}\n\
             More events follow (the newest is #{head}): --after {last}\n"
        ))?;
    }
    Ok(())
}

/// After a page, the last number shown and the head, when events remain beyond the page.
fn remaining(page: &TimelinePage) -> Option<(u64, u64)> {
    page.events
        .last()
        .map(|event| event.seq)
        .filter(|last| *last < page.head)
        .map(|last| (last, page.head))
}

/// `tsunagu tail`: prints events as they arrive until Ctrl-C (exit 0) or until stdout is
/// closed; over the WebSocket unless `--poll` is given. `--json` prints one JSON event per
/// line. The end of the session stops it with exit code 3. The tokens are saved whenever they
/// are refreshed, so that stopping the command another way does not lose the session.
pub(super) async fn tail(ctx: &Context, args: TailArgs) -> Result<(), CliError> {
    ctx.with_session(async |session, credentials| {
        let start = match args.after {
            Some(after) => after,
            None => session.timeline_head(args.room).await?,
        };
        if args.poll {
            let interval = Duration::from_secs(args.interval);
            let source = Polling::new(session.clone(), args.room, start, interval);
            waiting(start);
            follow(ctx, session, credentials, source).await
        } else {
            let source = Live::start(session, args.room, start).await?;
            waiting(start);
            follow(ctx, session, credentials, source).await
        }
    })
    .await
}

fn waiting(start: u64) {
    output::stderr(&format!(
        "#{start} より後の新しい出来事を待っています（Ctrl-C で終了）。\n\
         Waiting for events after #{start} (Ctrl-C to stop).\n"
    ));
}

/// What an [`EventSource`] yields next.
#[derive(Debug)]
enum Step {
    /// The next event, in order; never one already yielded.
    Event(TimelineEvent),
    /// The server cannot be reached or is unavailable (why); the source keeps trying.
    Outage(String),
    /// The server can be reached again.
    Recovered,
}

/// Where `tail` gets new events from.
trait EventSource {
    /// The next step; waits until there is one. Passing outages are steps; an error ends
    /// `tail`.
    async fn next(&mut self) -> Result<Step, CliError>;

    /// Stops the source cleanly (Ctrl-C).
    async fn close(self)
    where
        Self: Sized,
    {
    }
}

/// Prints what `source` yields until Ctrl-C, a closed stdout or an error that retrying will
/// not cure. Passing outages (server unreachable or busy) are reported once and waited out.
async fn follow(
    ctx: &Context,
    session: &Session,
    credentials: &Credentials,
    mut source: impl EventSource,
) -> Result<(), CliError> {
    let out = ctx.out();
    let mut view = TimelineView::new();
    let mut saved = credentials.tokens();
    let mut outage = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let step = tokio::select! {
            stopped = &mut ctrl_c => {
                source.close().await;
                return stopped.map_err(|source| CliError::Io {
                    what: "could not wait for Ctrl-C".to_owned(),
                    source,
                });
            }
            step = source.next() => step,
        };
        let tokens = session.tokens();
        if tokens != saved {
            ctx.save_tokens(credentials, &tokens)?;
            saved = tokens;
        }
        match step? {
            Step::Event(event) => {
                if !out.stream_item(&event, || view.render(&event))? {
                    return Ok(());
                }
            }
            Step::Outage(reason) => {
                if !outage {
                    outage = true;
                    output::stderr(&format!(
                        "サーバーに接続できません。再試行します。 Cannot reach the server \
                         ({reason}); retrying.\n"
                    ));
                }
            }
            Step::Recovered => {
                if outage {
                    outage = false;
                    output::stderr("再接続しました。 Reconnected.\n");
                }
            }
        }
    }
}

/// Whether retrying later may succeed: the server is unreachable, unavailable or asks to
/// slow down.
fn is_passing(err: &ClientError) -> bool {
    client_exit_code(err) == exit::UNAVAILABLE || err.is(ErrorCode::RateLimited)
}

/// New events over the WebSocket, through the client library's [`LiveClient`]: it
/// resubscribes, reconnects (with backoff and a fresh ticket) and drops replays by itself,
/// so every event comes once and in order. The end of the session, or the room refused
/// (the member left or was removed), ends `tail`.
#[derive(Debug)]
struct Live {
    client: LiveClient,
}

impl Live {
    /// Connects and follows `room` from after `after`.
    async fn start(session: &Session, room: RoomId, after: u64) -> Result<Self, CliError> {
        let client = LiveClient::start(session, LiveOptions::default()).await?;
        client.subscribe(room, after).await?;
        Ok(Self { client })
    }
}

impl EventSource for Live {
    async fn next(&mut self) -> Result<Step, CliError> {
        loop {
            let Some(item) = self.client.next_event().await else {
                return Err(LiveError::Stopped.into());
            };
            return match item {
                LiveEvent::Event { event, .. } => Ok(Step::Event(event)),
                LiveEvent::Disconnected { error, .. } => Ok(Step::Outage(error.to_string())),
                LiveEvent::Reconnected => Ok(Step::Recovered),
                LiveEvent::Removed { error, .. } => Err(LiveError::Server(error).into()),
                LiveEvent::SessionEnded => Err(LiveError::SessionEnded.into()),
                LiveEvent::Stopped { error } => Err(error.into()),
                LiveEvent::Error { error } => {
                    output::stderr(&format!(
                        "サーバーからのエラー: Error from the server: {error}\n"
                    ));
                    continue;
                }
                // Subscribed, resumed: nothing to show.
                _ => continue,
            };
        }
    }

    async fn close(self) {
        self.client.close().await;
    }
}

/// New events by asking for the events after the last one seen, every `interval` (at once
/// while a backlog remains).
#[derive(Debug)]
struct Polling {
    session: Session,
    room: RoomId,
    /// The last number fetched.
    cursor: u64,
    interval: Duration,
    /// How long to wait before the next request.
    pause: Duration,
    /// Fetched, not yet yielded.
    fetched: VecDeque<TimelineEvent>,
    /// The last request failed.
    failing: bool,
}

impl Polling {
    /// Polls `room` for events after `after`; the first request goes out at once.
    fn new(session: Session, room: RoomId, after: u64, interval: Duration) -> Self {
        Self {
            session,
            room,
            cursor: after,
            interval,
            pause: Duration::ZERO,
            fetched: VecDeque::new(),
            failing: false,
        }
    }
}

impl EventSource for Polling {
    async fn next(&mut self) -> Result<Step, CliError> {
        loop {
            if let Some(event) = self.fetched.pop_front() {
                return Ok(Step::Event(event));
            }
            tokio::time::sleep(self.pause).await;
            match self
                .session
                .timeline(self.room, self.cursor, MAX_TIMELINE_PAGE)
                .await
            {
                Ok(page) => {
                    let (events, caught_up) = advance(&mut self.cursor, page);
                    self.pause = if caught_up {
                        self.interval
                    } else {
                        Duration::ZERO
                    };
                    self.fetched = events.into();
                    if std::mem::take(&mut self.failing) {
                        return Ok(Step::Recovered);
                    }
                }
                Err(err) if is_passing(&err) => {
                    self.pause = err.retry_after().unwrap_or_default().max(self.interval);
                    self.failing = true;
                    return Ok(Step::Outage(err.to_string()));
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// The events of `page` after `cursor` (none is ever shown twice), moving `cursor` to the
/// last; and whether the head has been reached, so that polling should wait.
fn advance(cursor: &mut u64, page: TimelinePage) -> (Vec<TimelineEvent>, bool) {
    let events: Vec<TimelineEvent> = page
        .events
        .into_iter()
        .filter(|event| event.seq > *cursor)
        .collect();
    let Some(last) = events.last().map(|event| event.seq) else {
        return (events, true);
    };
    *cursor = last;
    (events, last >= page.head)
}

/// `tsunagu ack`: acknowledges the post and prints everyone who has.
pub(super) async fn ack(ctx: &Context, args: EntryArgs) -> Result<(), CliError> {
    let EntryArgs { room, seq } = args;
    let acks = ctx
        .with_session(async |s, _| {
            let entry = post_at(s, room, seq).await?.entry_id;
            Ok(s.acknowledge(room, entry).await?)
        })
        .await?;
    let out = ctx.out();
    out.notice(&format!(
        "#{seq} に「見ました」を記録しました。 You have acknowledged #{seq}.\n\n"
    ))?;
    out.value(&acks, || output::acknowledgements(seq, &acks))
}

/// `tsunagu acks`.
pub(super) async fn acks(ctx: &Context, args: EntryArgs) -> Result<(), CliError> {
    let EntryArgs { room, seq } = args;
    let acks = ctx
        .with_session(async |s, _| {
            let entry = post_at(s, room, seq).await?.entry_id;
            Ok(s.acknowledgements(room, entry).await?)
        })
        .await?;
    ctx.out()
        .value(&acks, || output::acknowledgements(seq, &acks))
}

/// `tsunagu edit`: the number must be the original post's.
pub(super) async fn edit(ctx: &Context, args: EditArgs) -> Result<(), CliError> {
    let request = EditEntryRequest {
        text: text_argument(&args.text, io::stdin().lock(), false)?,
        reason: args.reason,
    };
    let (room, seq) = (args.room, args.seq);
    let (post, event) = ctx
        .with_session(async |s, _| {
            let post = post_at(s, room, seq).await?;
            let event = s.edit_entry(room, post.entry_id, &request).await?;
            Ok((post, event))
        })
        .await?;
    ctx.out().value(&event, || {
        let mut view = TimelineView::new();
        view.remember(&post);
        format!(
            "#{seq} を訂正しました。 #{seq} has been corrected.\n{}",
            view.render(&event)
        )
    })
}

/// `tsunagu delete`: the number must be the original post's.
pub(super) async fn delete(ctx: &Context, args: DeleteArgs) -> Result<(), CliError> {
    let DeleteArgs { room, seq, reason } = args;
    let (post, event) = ctx
        .with_session(async |s, _| {
            let post = post_at(s, room, seq).await?;
            let event = s.delete_entry(room, post.entry_id, &reason).await?;
            Ok((post, event))
        })
        .await?;
    ctx.out().value(&event, || {
        let mut view = TimelineView::new();
        view.remember(&post);
        format!(
            "#{seq} を削除しました（以前の版は専門職が閲覧できます）。\n\
             #{seq} has been deleted (professionals can still read its earlier versions).\n{}",
            view.render(&event)
        )
    })
}

/// `tsunagu versions`.
pub(super) async fn versions(ctx: &Context, args: EntryArgs) -> Result<(), CliError> {
    let EntryArgs { room, seq } = args;
    let versions = ctx
        .with_session(async |s, _| {
            let entry = post_at(s, room, seq).await?.entry_id;
            Ok(s.entry_versions(room, entry).await?)
        })
        .await?;
    ctx.out()
        .value(&versions, || output::versions(seq, &versions))
}

/// `tsunagu read`: up to `seq`, or the newest event. `--json` prints the position sent.
pub(super) async fn read(ctx: &Context, room: RoomId, seq: Option<u64>) -> Result<(), CliError> {
    let seq = ctx
        .call(async |s| {
            let seq = match seq {
                Some(seq) => seq,
                None => s.timeline_head(room).await?,
            };
            s.mark_read(room, seq).await?;
            Ok(seq)
        })
        .await?;
    ctx.out().value(&MarkReadRequest { seq }, || {
        format!("#{seq} まで既読にしました。 Marked read up to #{seq}.\n")
    })
}

/// The post numbered `seq` in the caller's stream of `room`.
async fn post_at(session: &Session, room: RoomId, seq: u64) -> Result<TimelineEvent, CliError> {
    let page = session.timeline(room, seq.saturating_sub(1), 1).await?;
    let head = page.head;
    let event = page
        .events
        .into_iter()
        .next()
        .filter(|event| event.seq == seq)
        .ok_or(CliError::NoSuchEvent { seq, head })?;
    require_post(event)
}

/// `event` if it is a post, else why not.
fn require_post(event: TimelineEvent) -> Result<TimelineEvent, CliError> {
    let found = match event.change {
        Change::Posted { .. } => return Ok(event),
        Change::Edited { .. } => ("訂正", "a correction"),
        Change::Deleted { .. } => ("削除", "a deletion"),
        Change::System { .. } => ("システムの記録", "a system event"),
    };
    Err(CliError::NotAPost {
        seq: event.seq,
        found,
    })
}

/// The text of a post or correction: the argument itself, or all of `stdin` for `-` (without
/// the final line break). Refused locally when empty.
/// The text of a post or correction: the argument, or stdin for `-`. It may be empty only
/// when `may_be_empty` (a post with attachments).
fn text_argument(
    argument: &str,
    mut stdin: impl Read,
    may_be_empty: bool,
) -> Result<String, CliError> {
    let text = if argument == "-" {
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .map_err(|source| CliError::Io {
                what: "could not read the text from stdin".to_owned(),
                source,
            })?;
        let kept = text.trim_end_matches(['\r', '\n']).len();
        text.truncate(kept);
        text
    } else {
        argument.to_owned()
    };
    if text.trim().is_empty() && !(may_be_empty && text.is_empty()) {
        return Err(CliError::Input {
            ja: "本文が空です。",
            en: "The text is empty.",
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use tsunagu_protocol::identity::Role;
    use tsunagu_protocol::timeline::{Author, SystemEvent, Visibility};
    use tsunagu_protocol::{EntryId, UserId};

    use super::*;

    fn event(seq: u64, change: Change) -> TimelineEvent {
        TimelineEvent {
            seq,
            entry_id: EntryId::generate(),
            visibility: Visibility::Everyone,
            author: Author {
                user_id: UserId::generate(),
                display_name: "佐藤 花子".into(),
                role: Role::Nurse,
                organisation_id: None,
                organisation_name: None,
            },
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            change,
        }
    }

    fn text_post(seq: u64) -> TimelineEvent {
        event(
            seq,
            Change::Posted {
                kind: EntryKind::Text,
                text: format!("投稿 {seq}"),
                client_id: None,
                attachments: Vec::new(),
            },
        )
    }

    fn page(seqs: &[u64], head: u64) -> TimelinePage {
        TimelinePage {
            events: seqs.iter().copied().map(text_post).collect(),
            head,
        }
    }

    #[test]
    fn text_comes_from_the_argument_or_from_stdin() {
        assert_eq!(
            text_argument("熱あり", &b"ignored"[..], false).unwrap(),
            "熱あり"
        );
        assert_eq!(
            text_argument("-", "1行目\n2行目\r\n\n".as_bytes(), false).unwrap(),
            "1行目\n2行目"
        );
        for empty in [&b""[..], b"\n", b"  \n\t\n"] {
            assert!(matches!(
                text_argument("-", empty, false),
                Err(CliError::Input { .. })
            ));
        }
        assert!(matches!(
            text_argument(" ", &b""[..], false),
            Err(CliError::Input { .. })
        ));
        // With attachments the text may be empty, but not blank.
        assert_eq!(text_argument("", &b""[..], true).unwrap(), "");
        assert_eq!(text_argument("-", &b"\n"[..], true).unwrap(), "");
        assert!(matches!(
            text_argument(" ", &b""[..], true),
            Err(CliError::Input { .. })
        ));
    }

    #[test]
    fn only_posts_can_be_acknowledged_or_changed() {
        let post = text_post(12);
        assert_eq!(require_post(post.clone()).unwrap(), post);
        let cases = [
            (
                Change::Edited {
                    version: 2,
                    text: "x".into(),
                    reason: "y".into(),
                },
                "a correction",
            ),
            (Change::Deleted { reason: "y".into() }, "a deletion"),
            (
                Change::System {
                    event: SystemEvent::RoomCreated,
                },
                "a system event",
            ),
        ];
        for (change, what) in cases {
            let err = require_post(event(14, change)).unwrap_err();
            assert_eq!(err.exit_code(), 6);
            assert_eq!(err.report().en, format!("#14 is {what}, not a post."));
        }
    }

    #[test]
    fn polling_moves_past_what_it_has_shown() {
        let mut cursor = 10;
        let (events, caught_up) = advance(&mut cursor, page(&[11, 12, 13], 13));
        assert_eq!(events.len(), 3);
        assert_eq!((cursor, caught_up), (13, true));

        // A backlog larger than a page: ask again at once.
        let (events, caught_up) = advance(&mut cursor, page(&[14, 15], 20));
        assert_eq!(events.len(), 2);
        assert_eq!((cursor, caught_up), (15, false));

        // Nothing new; events already shown are never shown again.
        let (events, caught_up) = advance(&mut cursor, page(&[], 15));
        assert!(events.is_empty() && caught_up);
        let (events, _) = advance(&mut cursor, page(&[14, 15, 16], 16));
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!((seqs, cursor), (vec![16], 16));
    }

    #[test]
    fn a_page_says_whether_more_remain() {
        assert_eq!(remaining(&page(&[1, 2], 5)), Some((2, 5)));
        assert_eq!(remaining(&page(&[4, 5], 5)), None);
        assert_eq!(remaining(&page(&[], 5)), None);
    }

    #[test]
    fn only_outages_are_waited_out() {
        let unavailable = ClientError::Decode {
            status: 503,
            message: "busy".into(),
        };
        assert!(is_passing(&unavailable));
        let limited = ClientError::Api {
            status: 429,
            body: tsunagu_protocol::ErrorBody::new(ErrorCode::RateLimited),
        };
        assert!(is_passing(&limited));
        let forbidden = ClientError::Api {
            status: 403,
            body: tsunagu_protocol::ErrorBody::new(ErrorCode::Forbidden),
        };
        assert!(!is_passing(&forbidden));
    }
}
