//! `/v1/events`: the event feed as pages and as a Server-Sent Events stream.
//!
//! A stream follows the feed with one waiting read at a time (`Read::Events` with a wait), so
//! it keeps going across leader changes on its own: the next read goes to whichever node
//! leads, from the last id this stream sent, and the consumer sees no gap and no duplicate.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use state_machine::{Event, EventPage, EventRead, MAX_EVENTS_PAGE};

use super::{json, Shared};
use crate::cluster::Read;
use crate::error::ApiError;
use crate::requests::{EventStreamQuery, EventsQuery};
use crate::views::{EventPageView, EventView};

/// API.md: a comment line at least every 15 s while idle.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Pause before a stream asks again after the cluster could not answer (no leader yet).
const RETRY_PAUSE: Duration = Duration::from_millis(200);

pub async fn list(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = EventsQuery::parse(query.as_deref())?;
    let page = read_page(&state, query.after, query.limit, Duration::ZERO).await?;
    Ok(json(
        StatusCode::OK,
        EventPageView {
            events: page.events.iter().map(EventView::from).collect(),
            next: page.next,
            head: page.head,
        },
    ))
}

pub async fn stream(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::invalid_field("Last-Event-ID", "must be an event id"))?,
        ),
        None => None,
    };
    let query = EventStreamQuery::parse(query.as_deref(), last_event_id)?;
    // The first read decides the status: ids past the retention are a 410, not a stream that
    // ends at once.
    let first = read_page(&state, query.after, MAX_EVENTS_PAGE as u32, Duration::ZERO).await?;
    let follow = Follow {
        state,
        after: first.next,
        pending: first.events.into(),
    };
    Ok(Sse::new(follow.into_stream())
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

async fn read_page(
    state: &Shared,
    after: u64,
    limit: u32,
    wait: Duration,
) -> Result<EventPage, ApiError> {
    let read = Read::Events {
        after,
        limit,
        wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
    };
    match state.cluster.read(read, state.cluster.deadline()).await? {
        EventRead::Page(page) => Ok(page),
        EventRead::Compacted { oldest } => Err(ApiError::events_compacted(oldest)),
    }
}

/// One consumer's place in the feed.
struct Follow {
    state: Shared,
    /// The last id sent (or the starting `after`).
    after: u64,
    /// Read but not yet sent.
    pending: VecDeque<Event>,
}

impl Follow {
    fn into_stream(self) -> impl Stream<Item = Result<SseEvent, Infallible>> {
        futures::stream::unfold(self, |mut follow| async move {
            let event = follow.next_event().await?;
            Some((Ok(sse_event(&event)), follow))
        })
    }

    /// The next event after the last one sent; `None` ends the stream, which happens only
    /// when this consumer fell behind the retention (its reconnect then gets the 410).
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.after = event.id;
                return Some(event);
            }
            let wait = self.state.cluster.events_wait();
            match read_page(&self.state, self.after, MAX_EVENTS_PAGE as u32, wait).await {
                Ok(page) => self.pending.extend(page.events),
                Err(e) if e.status() == StatusCode::GONE => return None,
                Err(e) => {
                    // No leader for now, or a node going away: the stream waits it out and
                    // goes on from the same id.
                    tracing::debug!(error = %e.message(), after = self.after, "event stream retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
}

fn sse_event(event: &Event) -> SseEvent {
    let body =
        serde_json::to_string(&EventView::from(event)).expect("an event view always serialises");
    SseEvent::default()
        .id(event.id.to_string())
        .event(event.kind.as_str())
        .data(body)
}
