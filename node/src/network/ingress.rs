//! The mailbox of the network actor: its commands and the cloneable [`NetworkHandle`].
//!
//! Two bounded queues, each with a stated overflow policy:
//! - transaction gossip ([`TX_QUEUE`] entries): `publish_tx` never waits; when the queue is full
//!   the transaction is dropped with a warning (`NetError::QueueFull`). A dropped transaction
//!   stays in the mempool and reaches peers with the block that confirms it.
//! - commands ([`COMMAND_QUEUE`] entries): blocks, verdicts, responses, permission changes and
//!   every other command wait for room. The actor keeps serving this queue even while the node is
//!   slow to read events, so waiting is short unless the actor itself is stuck.
//!
//! The actor holds only a weak sender to its own command queue (for host-name resolution), so
//! when every handle is dropped the queue closes and the actor stops.

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::{ChannelId, MessageId, NetError, PeerInfo, Request, Response, Verdict};

/// Capacity of the transaction gossip queue.
pub(crate) const TX_QUEUE: usize = 4096;
/// Capacity of the command queue.
pub(crate) const COMMAND_QUEUE: usize = 256;

type Reply<T> = oneshot::Sender<Result<T, NetError>>;

/// What the actor is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    PublishBlock {
        bytes: Vec<u8>,
        reply: Reply<MessageId>,
    },
    Report {
        msg_id: MessageId,
        source: PeerId,
        verdict: Verdict,
    },
    Request {
        peer: PeerId,
        request: Request,
        reply: Reply<Response>,
    },
    Respond {
        channel: ChannelId,
        response: Response,
        reply: Reply<()>,
    },
    SetPermitted {
        peer: PeerId,
        permitted: bool,
    },
    Dial {
        addrs: Vec<Multiaddr>,
        reply: Reply<()>,
    },
    Disconnect {
        peer: PeerId,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
    /// Internal: a seed's host name was resolved.
    SeedResolved {
        index: usize,
        addrs: Result<Vec<Multiaddr>, NetError>,
    },
}

/// The cheap, cloneable way to talk to the network task.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    local_peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    tx_gossip: mpsc::Sender<Vec<u8>>,
}

pub(crate) fn channels(
    local_peer_id: PeerId,
) -> (
    NetworkHandle,
    mpsc::Receiver<Command>,
    mpsc::Receiver<Vec<u8>>,
) {
    let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (tx_gossip, tx_rx) = mpsc::channel(TX_QUEUE);
    let handle = NetworkHandle {
        local_peer_id,
        commands,
        tx_gossip,
    };
    (handle, commands_rx, tx_rx)
}

impl NetworkHandle {
    /// Our own peer id (derived from the node's key).
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    pub(crate) fn weak(&self) -> mpsc::WeakSender<Command> {
        self.commands.downgrade()
    }

    /// Gossips a transaction. Never waits: a full queue drops it (`QueueFull`, logged).
    pub fn publish_tx(&self, bytes: Vec<u8>) -> Result<(), NetError> {
        match self.tx_gossip.try_send(bytes) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("transaction gossip queue full: transaction dropped");
                Err(NetError::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(NetError::Stopped),
        }
    }

    /// Gossips a block; waits for room in the queue and for gossipsub's answer: `NoPeers` when
    /// no permitted peer is subscribed (yet), `Duplicate` for the same bytes twice within a
    /// minute.
    pub async fn publish_block(&self, bytes: Vec<u8>) -> Result<MessageId, NetError> {
        self.call(|reply| Command::PublishBlock { bytes, reply })
            .await
    }

    /// The node's verdict on a gossiped message (from `NetEvent::Tx`/`NetEvent::Block`), due
    /// within `NetworkConfig::validation_window`; a later verdict is a no-op. Call it once per
    /// message, with the `peer` of the event as `propagation_source`.
    pub async fn report(
        &self,
        msg_id: MessageId,
        propagation_source: PeerId,
        verdict: Verdict,
    ) -> Result<(), NetError> {
        self.send(Command::Report {
            msg_id,
            source: propagation_source,
            verdict,
        })
        .await
    }

    /// Sends a sync request and waits for the response (bounded by `request_timeout`).
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, NetError> {
        self.call(|reply| Command::Request {
            peer,
            request,
            reply,
        })
        .await
    }

    /// Answers an inbound request (from `NetEvent::Request`).
    pub async fn respond(&self, channel: ChannelId, response: Response) -> Result<(), NetError> {
        self.call(|reply| Command::Respond {
            channel,
            response,
            reply,
        })
        .await
    }

    /// Grants or revokes a connected peer's connect permission; revoking disconnects it.
    pub async fn set_permitted(&self, peer: PeerId, permitted: bool) -> Result<(), NetError> {
        self.send(Command::SetPermitted { peer, permitted }).await
    }

    /// Dials `host:port` (an IP or a name, resolved here). Returns once the dial has started;
    /// the connection shows up as `NetEvent::PeerConnected`.
    pub async fn dial(&self, host: &str, port: u16) -> Result<(), NetError> {
        let addrs = super::resolve(host, port).await?;
        self.call(|reply| Command::Dial { addrs, reply }).await
    }

    /// Closes every connection to a peer.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), NetError> {
        self.send(Command::Disconnect { peer }).await
    }

    /// The connected peers, sorted by address.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Peers { reply }).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Stops the network task; returns once the Swarm (and its connections) are dropped.
    pub async fn shutdown(&self) -> Result<(), NetError> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Shutdown { done }).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    async fn send(&self, command: Command) -> Result<(), NetError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetError::Stopped)
    }

    async fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(command(reply)).await?;
        rx.await.map_err(|_| NetError::Stopped)?
    }
}
