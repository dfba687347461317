//! The routing suite (`tests/routing.rs`) again, on a 3-master, 3-replica Redis
//! Cluster this binary starts and shares: each test's server in a namespace of
//! its own, so the namespaces spread over the masters (see `common::on_cluster`).

#[path = "routing.rs"]
mod suite;
