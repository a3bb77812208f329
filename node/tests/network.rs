//! The network layer over real libp2p (TCP on 127.0.0.1) with several nodes in one process.
//! Every wait is bounded; module names start with `network_` so that
//! `cargo test -p wattle-node network` selects them.

use std::time::Duration;

use tokio::sync::mpsc;
use wattle_node::network::{
    self, MessageId, NetError, NetEvent, NetworkConfig, NetworkHandle, PeerId, Request, Response,
    Verdict,
};

const CHAIN: [u8; 32] = [0xc4; 32];
/// Longest wait for something that should happen.
const SOON: Duration = Duration::from_secs(10);
/// How long we watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(1200);

struct Node {
    handle: NetworkHandle,
    events: mpsc::Receiver<NetEvent>,
    port: u16,
    peer: PeerId,
}

fn config(secret: u8, seeds: &[&Node]) -> NetworkConfig {
    let mut config = NetworkConfig::new([secret; 32], CHAIN);
    config.heartbeat = Duration::from_millis(100);
    config.max_transmit_size = 64 * 1024;
    config.request_timeout = Duration::from_secs(5);
    config.seeds = seeds
        .iter()
        .map(|n| ("127.0.0.1".to_string(), n.port))
        .collect();
    config
}

async fn start(config: NetworkConfig) -> Node {
    let (handle, events, port) = network::spawn(config).await.expect("network starts");
    let peer = handle.local_peer_id();
    Node {
        handle,
        events,
        port,
        peer,
    }
}

impl Node {
    /// The next event matching `pred`, skipping others; panics after `SOON`.
    async fn expect(&mut self, what: &str, pred: impl Fn(&NetEvent) -> bool) -> NetEvent {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Some(event) if pred(&event) => return event,
                    Some(_) => continue,
                    None => panic!("event stream closed while waiting for {what}"),
                }
            }
        };
        tokio::time::timeout(SOON, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// Asserts that no event matching `pred` arrives within `QUIET`.
    async fn expect_none(&mut self, what: &str, pred: impl Fn(&NetEvent) -> bool) {
        let deadline = tokio::time::Instant::now() + QUIET;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            match event {
                Some(event) if pred(&event) => panic!("unexpected {what}: {event:?}"),
                Some(_) => {}
                None => return,
            }
        }
    }

    async fn expect_connected(&mut self, peer: PeerId) -> NetEvent {
        self.expect(
            "PeerConnected",
            |e| matches!(e, NetEvent::PeerConnected { peer: p, .. } if *p == peer),
        )
        .await
    }

    /// Waits for the peer to connect and grants it connect permission.
    async fn admit(&mut self, peer: PeerId) {
        self.expect_connected(peer).await;
        self.handle.set_permitted(peer, true).await.unwrap();
    }

    async fn expect_block(&mut self, bytes: &[u8]) -> (PeerId, MessageId) {
        match self
            .expect(
                "Block",
                |e| matches!(e, NetEvent::Block { bytes: b, .. } if b == bytes),
            )
            .await
        {
            NetEvent::Block { peer, msg_id, .. } => (peer, msg_id),
            _ => unreachable!(),
        }
    }

    /// Asserts that this block does not arrive within `QUIET`.
    async fn expect_no_block(&mut self, bytes: &[u8]) {
        self.expect_none(
            "block",
            |e| matches!(e, NetEvent::Block { bytes: b, .. } if b == bytes),
        )
        .await;
    }

    /// Asserts that no gossip at all arrives within `QUIET`.
    async fn expect_no_gossip(&mut self) {
        self.expect_none("gossip", |e| {
            matches!(e, NetEvent::Block { .. } | NetEvent::Tx { .. })
        })
        .await;
    }
}

/// Publishes until a permitted peer is subscribed (the first heartbeats).
async fn publish_when_ready(node: &Node, bytes: &[u8]) -> MessageId {
    let wait = async {
        loop {
            match node.handle.publish_block(bytes.to_vec()).await {
                Ok(id) => return id,
                Err(NetError::NoPeers) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("publish failed: {e}"),
            }
        }
    };
    tokio::time::timeout(SOON, wait).await.expect("publish")
}

/// Starts A (seed) and the given secrets as nodes dialling A; all connections permitted on
/// both sides.
async fn permitted_star(secrets: &[u8]) -> (Node, Vec<Node>) {
    let mut a = start(config(1, &[])).await;
    let mut others = Vec::new();
    for &secret in secrets {
        let mut node = start(config(secret, &[&a])).await;
        node.admit(a.peer).await;
        a.admit(node.peer).await;
        others.push(node);
    }
    (a, others)
}

/// B relays through A: warm up until A's mesh towards `c` exists (a relayed block arrives).
async fn warm_up(a: &mut Node, b: &Node, c: &mut Node) {
    for i in 0u32.. {
        assert!(i < 50, "mesh never formed");
        let bytes = format!("warm-up {i}").into_bytes();
        publish_when_ready(b, &bytes).await;
        let (source, msg_id) = a.expect_block(&bytes).await;
        a.handle
            .report(msg_id, source, Verdict::Accept)
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_millis(400), c.expect_block(&bytes)).await;
        if got.is_ok() {
            return;
        }
    }
}

mod network_gossip {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_block_is_relayed_only_after_accept_and_never_after_reject_or_ignore() {
        let (mut a, mut rest) = permitted_star(&[2, 3]).await;
        let mut c = rest.pop().unwrap();
        let b = rest.pop().unwrap();
        warm_up(&mut a, &b, &mut c).await;

        // Accept: held at A until the verdict, then relayed to C with A as the source.
        let block = b"block accepted".to_vec();
        let published = publish_when_ready(&b, &block).await;
        let (source, msg_id) = a.expect_block(&block).await;
        assert_eq!(source, b.peer);
        assert_eq!(msg_id, published);
        assert_eq!(msg_id.0, wattle_ledger::hash::sha256(&block).to_vec());
        c.expect_no_block(&block).await;
        a.handle
            .report(msg_id, source, Verdict::Accept)
            .await
            .unwrap();
        assert_eq!(c.expect_block(&block).await.0, a.peer);

        for verdict in [Verdict::Ignore, Verdict::Reject] {
            let block = format!("block {verdict:?}").into_bytes();
            publish_when_ready(&b, &block).await;
            let (source, msg_id) = a.expect_block(&block).await;
            a.handle.report(msg_id, source, verdict).await.unwrap();
            c.expect_no_block(&block).await;
        }

        // A's own blocks and transactions go straight out; oversize payloads are refused.
        a.handle.publish_tx(b"tx from a".to_vec()).unwrap();
        let tx = c.expect("Tx", |e| matches!(e, NetEvent::Tx { .. })).await;
        assert!(
            matches!(tx, NetEvent::Tx { peer, bytes, .. } if peer == a.peer && bytes == b"tx from a")
        );
        let too_big = vec![0u8; 64 * 1024 + 1];
        assert!(matches!(
            a.handle.publish_block(too_big).await,
            Err(NetError::TooLarge { .. })
        ));
        assert_eq!(
            a.handle.publish_block(block_twice()).await.err(),
            None,
            "first publication"
        );
        assert_eq!(
            a.handle.publish_block(block_twice()).await.err(),
            Some(NetError::Duplicate)
        );
        a.handle.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repeated_rejects_ban_the_sender() {
        let (mut a, mut rest) = permitted_star(&[2]).await;
        let b = rest.pop().unwrap();
        for i in 0..3 {
            let bad = format!("invalid block {i}").into_bytes();
            publish_when_ready(&b, &bad).await;
            let (source, msg_id) = a.expect_block(&bad).await;
            a.handle
                .report(msg_id, source, Verdict::Reject)
                .await
                .unwrap();
        }
        // B's score at A is now -10 x 3² = -90, below the graylist threshold (-80), and its
        // misbehaviour score 3 x 34: A disconnects B and refuses it for the ban (10 minutes),
        // although B keeps redialling its seed.
        a.expect(
            "B disconnected",
            |e| matches!(e, NetEvent::PeerDisconnected { peer } if *peer == b.peer),
        )
        .await;
        a.expect_none(
            "B back",
            |e| matches!(e, NetEvent::PeerConnected { peer, .. } if *peer == b.peer),
        )
        .await;
        assert!(a.handle.peers().await.unwrap().is_empty());
    }

    fn block_twice() -> Vec<u8> {
        b"published twice".to_vec()
    }
}

mod network_permission {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unpermitted_peer_gets_no_gossip_and_may_only_ask_for_params() {
        let (mut a, mut rest) = permitted_star(&[2]).await;
        let mut b = rest.pop().unwrap();
        // D trusts A, but A does not admit D.
        let mut d = start(config(4, &[&a])).await;
        d.admit(a.peer).await;
        a.expect_connected(d.peer).await;

        // Let subscriptions and a few heartbeats go by: D is now as well placed as B.
        tokio::time::sleep(Duration::from_millis(600)).await;

        // A's own block reaches B, not D; neither does a block A relays for B.
        let block = b"from a".to_vec();
        publish_when_ready(&a, &block).await;
        b.expect_block(&block).await;
        let relayed = b"relayed by a".to_vec();
        publish_when_ready(&b, &relayed).await;
        let (source, msg_id) = a.expect_block(&relayed).await;
        a.handle
            .report(msg_id, source, Verdict::Accept)
            .await
            .unwrap();
        d.expect_no_gossip().await;

        // D's gossip is dropped by A.
        let from_d = b"from d".to_vec();
        publish_when_ready(&d, &from_d).await;
        a.expect_none("block from D", |e| matches!(e, NetEvent::Block { .. }))
            .await;

        // GetStatus is denied without involving A's node; GetParams reaches it.
        let status = d.handle.request(a.peer, Request::GetStatus).await.unwrap();
        assert!(matches!(status, Response::Denied(_)), "{status:?}");
        let params = Response::Params {
            params: b"params".to_vec(),
            genesis: vec![7; 300],
        };
        let (ask, answer) = tokio::join!(d.handle.request(a.peer, Request::GetParams), async {
            let event = a
                .expect("Request", |e| matches!(e, NetEvent::Request { .. }))
                .await;
            let NetEvent::Request {
                peer,
                request,
                channel,
            } = event
            else {
                unreachable!()
            };
            assert_eq!((peer, request), (d.peer, Request::GetParams));
            a.handle.respond(channel, params.clone()).await
        });
        answer.unwrap();
        assert_eq!(ask.unwrap(), params);

        let peers = a.handle.peers().await.unwrap();
        let permitted: Vec<_> = peers
            .iter()
            .map(|p| (p.peer, p.permitted, p.inbound))
            .collect();
        assert_eq!(peers.len(), 2);
        assert!(permitted.contains(&(b.peer, true, true)));
        assert!(permitted.contains(&(d.peer, false, true)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn losing_permission_disconnects_and_the_seed_is_redialled() {
        let (mut a, mut rest) = permitted_star(&[2]).await;
        let mut b = rest.pop().unwrap();
        a.handle.set_permitted(b.peer, false).await.unwrap();
        let gone = |peer: PeerId| move |e: &NetEvent| matches!(e, NetEvent::PeerDisconnected { peer: p } if *p == peer);
        a.expect("A loses B", gone(b.peer)).await;
        b.expect("B loses A", gone(a.peer)).await;
        // B keeps knocking at its seed (backoff starts at 1 s); A sees a new, unpermitted session.
        a.expect_connected(b.peer).await;
        let peers = a.handle.peers().await.unwrap();
        assert_eq!(peers.len(), 1);
        assert!(!peers[0].permitted);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unpermitted_peers_are_limited_in_time_and_number() {
        let mut seed_config = config(1, &[]);
        seed_config.unpermitted_grace = Duration::from_millis(700);
        seed_config.max_unpermitted = 1;
        let mut a = start(seed_config).await;
        let mut d1 = start(config(5, &[&a])).await;
        a.expect_connected(d1.peer).await;

        // A second unpermitted peer is dropped on arrival, unannounced.
        let mut d2_config = config(6, &[&a]);
        d2_config.redial_min = Duration::from_secs(5); // no second knock during the test
        d2_config.redial_max = Duration::from_secs(5);
        let mut d2 = start(d2_config).await;
        d2.expect_connected(a.peer).await;
        d2.expect("D2 dropped", |e| {
            matches!(e, NetEvent::PeerDisconnected { .. })
        })
        .await;

        // D1 is dropped once its grace period is over.
        d1.expect("D1 dropped", |e| {
            matches!(e, NetEvent::PeerDisconnected { .. })
        })
        .await;
        let event = a
            .expect("an event about D1 or D2", |e| {
                matches!(
                    e,
                    NetEvent::PeerDisconnected { .. } | NetEvent::PeerConnected { .. }
                )
            })
            .await;
        assert_eq!(event, NetEvent::PeerDisconnected { peer: d1.peer });
    }
}

mod network_identity {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn peer_connected_carries_the_wattle_address_of_the_peer_key() {
        let mut a = start(config(1, &[])).await;
        let mut b = start(config(42, &[&a])).await;
        let address_of = |secret: u8| wattle_ledger::SecretKey::from_bytes(&[secret; 32]).address();

        let at_a = a.expect_connected(b.peer).await;
        assert_eq!(
            at_a,
            NetEvent::PeerConnected {
                peer: b.peer,
                address: address_of(42),
                inbound: true
            }
        );
        let at_b = b.expect_connected(a.peer).await;
        assert_eq!(
            at_b,
            NetEvent::PeerConnected {
                peer: a.peer,
                address: address_of(1),
                inbound: false
            }
        );
        assert_eq!(network::address_of_peer(&b.peer), Some(address_of(42)));
        let peers = b.handle.peers().await.unwrap();
        assert_eq!(peers[0].addr, format!("/ip4/127.0.0.1/tcp/{}", a.port));
    }
}

mod network_sync {
    use super::*;
    use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
    use libp2p::request_response::{self, ProtocolSupport};
    use libp2p::swarm::SwarmEvent;
    use libp2p::{StreamProtocol, noise, tcp, yamux};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unanswered_request_times_out() {
        let mut a = start(config(1, &[])).await;
        let mut b_config = config(2, &[&a]);
        b_config.request_timeout = Duration::from_millis(500);
        let mut b = start(b_config).await;
        b.admit(a.peer).await;
        a.admit(b.peer).await;
        let request = Request::GetBlocks {
            from_height: 1,
            count: 10,
        };
        let (result, _) = tokio::join!(b.handle.request(a.peer, request.clone()), async {
            // A's node sees the request but never answers.
            let event = a
                .expect("Request", |e| matches!(e, NetEvent::Request { .. }))
                .await;
            assert!(matches!(event, NetEvent::Request { request: r, .. } if r == request));
        });
        assert_eq!(result, Err(NetError::Timeout));
    }

    /// Writes raw bytes on `/wattle/sync/1`.
    #[derive(Clone, Default)]
    struct RawCodec;

    impl request_response::Codec for RawCodec {
        type Protocol = StreamProtocol;
        type Request = Vec<u8>;
        type Response = Vec<u8>;

        async fn read_request<T>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
        ) -> std::io::Result<Vec<u8>>
        where
            T: AsyncRead + Unpin + Send,
        {
            let mut out = Vec::new();
            io.read_to_end(&mut out).await?;
            Ok(out)
        }

        async fn read_response<T>(
            &mut self,
            p: &StreamProtocol,
            io: &mut T,
        ) -> std::io::Result<Vec<u8>>
        where
            T: AsyncRead + Unpin + Send,
        {
            self.read_request(p, io).await
        }

        async fn write_request<T>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
            req: Vec<u8>,
        ) -> std::io::Result<()>
        where
            T: AsyncWrite + Unpin + Send,
        {
            io.write_all(&req).await?;
            io.close().await
        }

        async fn write_response<T>(
            &mut self,
            p: &StreamProtocol,
            io: &mut T,
            res: Vec<u8>,
        ) -> std::io::Result<()>
        where
            T: AsyncWrite + Unpin + Send,
        {
            self.write_request(p, io, res).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn garbage_requests_do_not_hurt_the_node() {
        let mut a = start(config(1, &[])).await;
        let keypair = libp2p::identity::Keypair::ed25519_from_bytes([9u8; 32]).unwrap();
        let mut raw = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    RawCodec,
                    [(
                        StreamProtocol::new(network::SYNC_PROTOCOL),
                        ProtocolSupport::Outbound,
                    )],
                    request_response::Config::default(),
                )
            })
            .unwrap()
            .build();
        raw.dial(
            format!("/ip4/127.0.0.1/tcp/{}", a.port)
                .parse::<libp2p::Multiaddr>()
                .unwrap(),
        )
        .unwrap();
        let payloads = [
            vec![0xff; 64],               // not CBOR
            vec![0xa1, 0x61, 0x78, 0x01], // CBOR, but not a request
            vec![0x42; 64 * 1024],        // over the request size limit
            Vec::new(),                   // nothing at all
        ];
        let outcomes = tokio::time::timeout(SOON, async {
            let mut sent = false;
            let mut outcomes = 0;
            while outcomes < payloads.len() {
                match raw.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if !sent => {
                        for payload in &payloads {
                            raw.behaviour_mut().send_request(&peer_id, payload.clone());
                        }
                        sent = true;
                    }
                    SwarmEvent::Behaviour(request_response::Event::Message { .. })
                    | SwarmEvent::Behaviour(request_response::Event::OutboundFailure { .. }) => {
                        outcomes += 1
                    }
                    _ => {}
                }
            }
            outcomes
        })
        .await
        .expect("every garbage request ends");
        assert_eq!(outcomes, payloads.len());
        a.expect_none("request", |e| matches!(e, NetEvent::Request { .. }))
            .await;
        // Undecodable requests (34 misbehaviour points each, three ban) ban the sender: A no longer
        // lists it, although an unpermitted peer may otherwise stay for its 10 s grace.
        let raw_peer = *raw.local_peer_id();
        let listed = a.handle.peers().await.unwrap();
        assert!(
            listed.iter().all(|p| p.peer != raw_peer),
            "the garbage sender is still connected: {listed:?}"
        );

        // A still serves a well-formed request.
        let mut b = start(config(2, &[&a])).await;
        a.admit(b.peer).await;
        b.admit(a.peer).await;
        let (ask, answer) = tokio::join!(b.handle.request(a.peer, Request::GetStatus), async {
            let event = a
                .expect("Request", |e| matches!(e, NetEvent::Request { .. }))
                .await;
            let NetEvent::Request { channel, .. } = event else {
                unreachable!()
            };
            a.handle
                .respond(
                    channel,
                    Response::Status {
                        height: 3,
                        tip: [5; 32],
                    },
                )
                .await
        });
        answer.unwrap();
        assert_eq!(
            ask.unwrap(),
            Response::Status {
                height: 3,
                tip: [5; 32]
            }
        );
    }
}
