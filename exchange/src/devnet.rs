//! `wattle-exchange devnet`: three nodes and their exchange services on 127.0.0.1.
//! (Placeholder until the devnet lands.)
