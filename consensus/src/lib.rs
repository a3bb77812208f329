//! Wattle consensus: the pure round-robin miner schedule, block production decisions, fork choice and sync planning (built in the consensus issue).
