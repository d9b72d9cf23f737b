//! The gRPC health service (`grpc.health.v1.Health`) on the node's own port, for balancers and
//! probes that speak gRPC. The server as a whole (`""`) and the inventory service are SERVING
//! exactly when `/readyz` would answer 200 (see `metrics::readiness`): one judgement, two ways
//! to ask for it. The raft and admin services report nothing of their own; they answer
//! whenever the process does.

use crate::metrics::pace;
use crate::metrics::readiness::{self, ApplyProgress};
use crate::types::Raft;
use proto::inventory::inventory_server::SERVICE_NAME as INVENTORY;
use std::sync::Arc;
use std::time::Duration;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The names a health check can ask about; `""` is the whole server, as the protocol says.
pub const SERVICES: [&str; 2] = ["", INVENTORY];

/// Readiness also turns on how long ago the node last applied, which no metrics change
/// announces: judge again at least this often.
const RECHECK: Duration = Duration::from_millis(500);

/// Keeps `reporter` in step with the node's readiness until Raft stops, then reports
/// NOT_SERVING for good.
pub fn start(raft: Raft, progress: Arc<ApplyProgress>, reporter: HealthReporter) {
    let mut metrics = raft.metrics();
    tokio::spawn(async move {
        let mut reported = None;
        loop {
            let verdict =
                readiness::judge(&metrics.borrow_and_update(), progress.since_last_apply());
            let status = match verdict {
                Ok(()) => ServingStatus::Serving,
                Err(_) => ServingStatus::NotServing,
            };
            if reported != Some(status) {
                report(&reporter, status).await;
                reported = Some(status);
            }
            tokio::select! {
                changed = pace::next_change(&mut metrics) => if changed.is_err() { break },
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
        report(&reporter, ServingStatus::NotServing).await;
    });
}

async fn report(reporter: &HealthReporter, status: ServingStatus) {
    for service in SERVICES {
        reporter.set_service_status(service, status).await;
    }
}
