//! What every request handler can reach: the routing engine, the settings, the
//! metrics handle and the live event feed. Its own module, so the HTTP layer (`http`) and the admin
//! API (`api`) both depend on it and not on each other.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Settings;
use crate::events::EventHub;
use crate::routing::Engine;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub settings: Arc<Settings>,
    pub metrics: PrometheusHandle,
    /// The live feed of `GET /v1/events`.
    pub events: EventHub,
}

impl AppState {
    /// After a request that may have freed an agent (and given it to a waiting
    /// caller in the same script): connects that caller through Twilio's REST
    /// API, or places the call to a callback's customer, off the request's
    /// own answer. A no-op without hold queues or REST.
    pub fn connect_waiting_soon(&self) {
        if self.engine.connects_waiting() {
            let engine = self.engine.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.connect_waiting().await {
                    tracing::warn!(error = %e, "cannot connect a matched caller now; the worker or its next wait fetch will");
                }
            });
        }
        if self.engine.dials_callbacks() {
            let engine = self.engine.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.dial_callbacks().await {
                    tracing::warn!(error = %e, "cannot place a callback now; the worker will");
                }
            });
        }
    }
}
