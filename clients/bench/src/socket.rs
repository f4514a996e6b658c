//! A lean WebSocket client for the benchmark: one reading task per connection that stamps
//! each frame with its arrival time, and the sending half kept by the caller.

use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tsunagu_client::Session;
use tsunagu_protocol::routes;
use tsunagu_protocol::ws::{ClientFrame, ServerFrame, WsTicket};

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 8 * 1024;

/// One open socket.
pub(crate) struct Socket {
    sink: SplitSink<Stream, Message>,
    /// Frames with their arrival time; closes when the socket does.
    pub(crate) frames: mpsc::UnboundedReceiver<(Instant, ServerFrame)>,
}

impl Socket {
    /// Opens a socket for `session` on the node at `node` (its base URL).
    pub(crate) async fn open(session: &Session, node: &str) -> Result<Socket> {
        let client = tsunagu_client::Client::new(node)?;
        let ticket: WsTicket = client
            .http()
            .post(client.url(routes::WS_TICKET))
            .bearer_auth(session.tokens().access_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let url = format!("{}?ticket={}", client.url(routes::WS), ticket.ticket)
            .replacen("http", "ws", 1);
        // tungstenite zeroes its whole read buffer before every read: at the default 128 KiB
        // that memset, not the server, would dominate the benchmark's own CPU time.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (stream, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .context("WebSocket upgrade")?;
        let (sink, mut stream) = stream.split();
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    let at = Instant::now();
                    match serde_json::from_str::<ServerFrame>(&text) {
                        Ok(frame) => {
                            if tx.send((at, frame)).is_err() {
                                return;
                            }
                        }
                        Err(error) => eprintln!("unreadable frame: {error}"),
                    }
                }
            }
        });
        Ok(Socket { sink, frames })
    }

    /// Sends one frame.
    pub(crate) async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        self.sink
            .send(Message::Text(serde_json::to_string(frame)?.into()))
            .await?;
        Ok(())
    }
}
