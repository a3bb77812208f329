//! Exchange offers with MultiChain semantics (to be written).
