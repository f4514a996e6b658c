//! The room hub: live fan-out of committed timeline events to the sockets subscribed to a
//! room, on this node. Writers publish after their transaction commits; each subscriber reads
//! from a bounded broadcast channel and falls back to the database when it falls behind, so
//! the hub may drop nothing that a client then misses (see [`crate::ws`]).
//!
//! An event is rendered to its JSON frame at most once per kind of viewer (stream, and
//! whether the viewer is its author), however many sockets receive it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{broadcast, watch};
use tsunagu_protocol::{RoomId, UserId};

use crate::store::{EventRow, Stream};

/// A committed event on its way to live subscribers, with its frames rendered on first use.
#[derive(Debug)]
pub struct Published {
    pub row: EventRow,
    /// The author, parsed once.
    pub author: Option<UserId>,
    /// Frames by [`Published::variant`]; `None` inside: the event could not be rendered.
    frames: [OnceLock<Option<Utf8Bytes>>; 4],
}

impl Published {
    /// Wraps a committed event.
    pub fn new(row: EventRow) -> Self {
        Self {
            author: row.author_id.parse().ok(),
            row,
            frames: Default::default(),
        }
    }

    /// The frame for a viewer reading `stream`, rendered by `render` the first time a viewer
    /// of that kind asks.
    pub fn frame(
        &self,
        stream: Stream,
        viewer: UserId,
        render: impl FnOnce() -> Option<Utf8Bytes>,
    ) -> Option<Utf8Bytes> {
        let variant = match stream {
            Stream::Full => 0,
            Stream::Public => 2,
        } + usize::from(self.author == Some(viewer));
        self.frames[variant].get_or_init(render).clone()
    }
}

/// Events buffered per room before slow subscribers are told to catch up from the database.
const ROOM_CAPACITY: usize = 1024;

/// Handle to the hub. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    rooms: Arc<Mutex<HashMap<RoomId, broadcast::Sender<Arc<Published>>>>>,
    closing: Arc<watch::Sender<bool>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            rooms: Arc::default(),
            closing: Arc::new(watch::channel(false).0),
        }
    }
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes once, when the server starts shutting down: live connections close.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Tells every live connection to close.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Receives the room's events published from now on.
    pub fn subscribe(&self, room: RoomId) -> broadcast::Receiver<Arc<Published>> {
        // A poisoned lock only means another thread panicked while holding it; the map is
        // still consistent (every operation on it is a single insert, get or remove).
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        rooms
            .entry(room)
            .or_insert_with(|| broadcast::channel(ROOM_CAPACITY).0)
            .subscribe()
    }

    /// Whether any socket of this node is subscribed to the room.
    pub fn is_watched(&self, room: RoomId) -> bool {
        let rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        rooms
            .get(&room)
            .is_some_and(|sender| sender.receiver_count() > 0)
    }

    /// The rooms some socket of this node is subscribed to.
    pub fn watched_rooms(&self) -> Vec<RoomId> {
        let rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        rooms
            .iter()
            .filter(|(_, sender)| sender.receiver_count() > 0)
            .map(|(room, _)| *room)
            .collect()
    }

    /// Publishes committed events of a room, in sequence order.
    pub fn publish(&self, room: RoomId, events: Vec<EventRow>) {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = rooms.get(&room) else {
            return;
        };
        if sender.receiver_count() == 0 {
            rooms.remove(&room);
            return;
        }
        for event in events {
            // Fails only when every receiver is gone, which is fine.
            let _ = sender.send(Arc::new(Published::new(event)));
        }
    }
}
