//! What every request handler can reach: the routing engine, the settings and
//! the metrics handle. Its own module, so the HTTP layer (`http`) and the admin
//! API (`api`) both depend on it and not on each other.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Settings;
use crate::routing::Engine;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub settings: Arc<Settings>,
    pub metrics: PrometheusHandle,
}
