//! The lifecycle suite (`tests/lifecycle.rs`) again, on a 3-master, 3-replica
//! Redis Cluster this binary starts and shares: each test's server in a
//! namespace of its own, so the namespaces spread over the masters (see
//! `common::on_cluster`).

#[path = "lifecycle.rs"]
mod suite;
