//! Integration tests for Wattle: each scenario is a module of the `scenarios` test binary.
