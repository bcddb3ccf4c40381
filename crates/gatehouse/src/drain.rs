//! Stopping `gatehouse up` in two steps. auth0-client calls the idp over HTTP on the same
//! listener, so the listener must keep accepting until auth0-client's requests in flight have
//! finished: stopping it first would leave them with a 502 from an idp that is still running.
//! So on a signal the front (auth0-client and the CMS pages) turns new requests away and is
//! waited for, and only then does the listener stop and the idp's own requests drain.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use tokio::sync::Notify;

/// The front's requests in flight, and whether it is stopping.
#[derive(Clone, Default)]
pub struct Front(Arc<Inner>);

#[derive(Default)]
struct Inner {
    stopping: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Front {
    /// `router` with its requests counted, and refused with a 503 once stopping.
    pub fn guard(&self, router: axum::Router) -> axum::Router {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), count))
    }

    /// Turns new requests away and waits until those in flight have finished, or `limit`.
    /// Returns whether they all finished.
    pub async fn stop(&self, limit: Duration) -> bool {
        self.0.stopping.store(true, SeqCst);
        let drained = async {
            while self.0.in_flight.load(SeqCst) > 0 {
                // A notification sent between the load and this await is kept as a permit.
                self.0.idle.notified().await;
            }
        };
        tokio::time::timeout(limit, drained).await.is_ok()
    }
}

/// Counts the request before looking at `stopping`, and `stop` sets `stopping` before reading
/// the count (both sequentially consistent): a request either sees that the front is stopping
/// or is seen by `stop`.
async fn count(State(front): State<Front>, req: Request, next: Next) -> Response {
    let _counted = Counted::new(&front.0);
    if front.0.stopping.load(SeqCst) {
        let mut res = auth0_client::error::mia_error(StatusCode::SERVICE_UNAVAILABLE, "The service is stopping");
        res.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return res;
    }
    next.run(req).await
}

/// One request in flight; dropped when it is answered or abandoned.
struct Counted<'a>(&'a Inner);

impl<'a> Counted<'a> {
    fn new(inner: &'a Inner) -> Self {
        inner.in_flight.fetch_add(1, SeqCst);
        Counted(inner)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, SeqCst) == 1 && self.0.stopping.load(SeqCst) {
            self.0.idle.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn stop_waits_for_requests_in_flight_and_turns_new_ones_away() {
        let front = Front::default();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
        let router = front.guard(axum::Router::new().route(
            "/slow",
            axum::routing::get(move || {
                let released = released.clone();
                async move {
                    let rx = released.lock().await.take().expect("one slow request");
                    let _ = rx.await;
                    "done"
                }
            }),
        ));
        let slow = tokio::spawn(router.clone().oneshot(Request::get("/slow").body(Body::empty()).unwrap()));
        while front.0.in_flight.load(SeqCst) == 0 {
            tokio::task::yield_now().await;
        }

        let stopping = tokio::spawn({
            let front = front.clone();
            async move { front.stop(Duration::from_secs(30)).await }
        });
        while !front.0.stopping.load(SeqCst) {
            tokio::task::yield_now().await;
        }
        let refused = router.clone().oneshot(Request::get("/slow").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::CONNECTION], "close");
        assert!(!stopping.is_finished(), "the slow request is still in flight");

        release.send(()).unwrap();
        assert_eq!(slow.await.unwrap().unwrap().status(), StatusCode::OK);
        assert!(stopping.await.unwrap(), "stop returns once the front is idle");
    }

    #[tokio::test]
    async fn stop_gives_up_after_its_limit() {
        let front = Front::default();
        let _stuck = Counted::new(&front.0);
        assert!(!front.stop(Duration::from_millis(20)).await);
    }
}
