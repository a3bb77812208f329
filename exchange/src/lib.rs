//! `wattle-exchange`: the admin / producer / consumer energy-trading web service and browser UI that drives a node over JSON-RPC (built in the exchange issue).
