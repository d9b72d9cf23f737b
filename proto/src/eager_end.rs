//! Request bodies that say they have ended as they hand over their last frame.
//!
//! tonic's request body learns that its one message was the last only when it is polled
//! again, so hyper sends each unary call as three HTTP/2 frames: HEADERS, DATA, then an empty
//! DATA frame with END_STREAM, which h2 wrote separately, often after the runtime had run
//! other tasks (`strace` on a leader under load: 150–900 µs later). The server answers a unary
//! call only once the stream has ended, so every AppendEntries, and every `Submit`, waited for
//! that last frame and cost the peer one more wake-up. Wrapped in [`EagerEnd`], a client's
//! bodies look one frame ahead: the last DATA frame carries END_STREAM itself.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};
use tonic::codegen::{http, Service};

/// A tonic client's service (a `Channel`, say) whose requests' bodies end eagerly.
#[derive(Clone, Debug)]
pub struct EagerEnd<S>(S);

impl<S> EagerEnd<S> {
    pub fn new(inner: S) -> Self {
        Self(inner)
    }
}

impl<S> Service<http::Request<tonic::body::Body>> for EagerEnd<S>
where
    S: Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.0
            .call(request.map(|body| tonic::body::Body::new(EagerEndBody::new(body))))
    }
}

/// What the body found when it looked past the frame it handed over.
enum Ahead<D, E> {
    Nothing,
    Frame(Frame<D>),
    Error(E),
    End,
}

/// A body that polls its inner body once more after each frame, so that `is_end_stream` is
/// true as soon as the last frame has been handed over.
pub struct EagerEndBody<B: Body> {
    inner: B,
    ahead: Ahead<B::Data, B::Error>,
}

impl<B: Body> EagerEndBody<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            ahead: Ahead::Nothing,
        }
    }
}

// Nothing is pinned but the inner body: the frame or error held ahead moves freely.
impl<B: Body + Unpin> Unpin for EagerEndBody<B> {}

impl<B: Body + Unpin> Body for EagerEndBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = match std::mem::replace(&mut this.ahead, Ahead::Nothing) {
            Ahead::Frame(frame) => frame,
            Ahead::Error(e) => return Poll::Ready(Some(Err(e))),
            Ahead::End => {
                this.ahead = Ahead::End;
                return Poll::Ready(None);
            }
            Ahead::Nothing => match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    this.ahead = Ahead::End;
                    return Poll::Ready(None);
                }
            },
        };
        // Not ready yet: the frame goes now, and the next poll waits for the rest.
        if let Poll::Ready(next) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.ahead = match next {
                Some(Ok(frame)) => Ahead::Frame(frame),
                Some(Err(e)) => Ahead::Error(e),
                None => Ahead::End,
            };
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        match self.ahead {
            Ahead::End => true,
            Ahead::Nothing => self.inner.is_end_stream(),
            Ahead::Frame(_) | Ahead::Error(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.ahead {
            Ahead::Nothing | Ahead::End => self.inner.size_hint(),
            // The held frame's length is not the inner body's to tell.
            Ahead::Frame(_) | Ahead::Error(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::task::Waker;
    use tonic::codegen::Bytes;

    /// Like tonic's request body: it knows it has ended only once polled past its last frame.
    /// `Pending` items make it not ready that many times.
    struct LateEnd {
        items: VecDeque<Option<Result<&'static str, &'static str>>>,
        ended: bool,
    }

    impl LateEnd {
        fn new(
            items: impl IntoIterator<Item = Option<Result<&'static str, &'static str>>>,
        ) -> Self {
            Self {
                items: items.into_iter().collect(),
                ended: false,
            }
        }
    }

    impl Body for LateEnd {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
            match self.items.pop_front() {
                None => {
                    self.ended = true;
                    Poll::Ready(None)
                }
                // A not-ready moment.
                Some(None) => Poll::Pending,
                Some(Some(Ok(data))) => Poll::Ready(Some(Ok(Frame::data(Bytes::from(data))))),
                Some(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            }
        }

        fn is_end_stream(&self) -> bool {
            self.ended
        }
    }

    type Polled = Poll<Option<Result<Frame<Bytes>, &'static str>>>;

    fn poll(body: &mut EagerEndBody<LateEnd>) -> Polled {
        Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop()))
    }

    fn data(polled: Polled) -> Bytes {
        match polled {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().expect("a data frame"),
            other => panic!(
                "expected a data frame, got {:?}",
                other.map(|o| o.map(|r| r.err()))
            ),
        }
    }

    #[test]
    fn a_single_message_has_ended_as_it_is_handed_over() {
        let inner = LateEnd::new([Some(Ok("message"))]);
        assert!(!inner.is_end_stream());
        let mut body = EagerEndBody::new(inner);
        assert!(!body.is_end_stream(), "nothing handed over yet");
        assert_eq!(data(poll(&mut body)), "message");
        assert!(body.is_end_stream(), "the last frame must carry the end");
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
        assert!(body.is_end_stream());
    }

    #[test]
    fn frames_keep_their_order_and_only_the_last_ends_the_stream() {
        let mut body = EagerEndBody::new(LateEnd::new([
            Some(Ok("one")),
            Some(Ok("two")),
            Some(Ok("three")),
        ]));
        assert_eq!(data(poll(&mut body)), "one");
        assert!(!body.is_end_stream());
        assert_eq!(data(poll(&mut body)), "two");
        assert!(!body.is_end_stream());
        assert_eq!(data(poll(&mut body)), "three");
        assert!(body.is_end_stream());
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }

    #[test]
    fn a_body_not_ready_past_a_frame_hands_it_over_and_waits_for_the_rest() {
        let mut body = EagerEndBody::new(LateEnd::new([Some(Ok("one")), None, Some(Ok("two"))]));
        assert_eq!(data(poll(&mut body)), "one");
        assert!(!body.is_end_stream(), "the end is not known yet");
        assert_eq!(data(poll(&mut body)), "two");
        assert!(body.is_end_stream());
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }

    #[test]
    fn an_error_found_ahead_comes_after_the_frame_before_it() {
        let mut body = EagerEndBody::new(LateEnd::new([Some(Ok("one")), Some(Err("broken"))]));
        assert_eq!(data(poll(&mut body)), "one");
        assert!(!body.is_end_stream(), "an error is not a clean end");
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Err("broken")))));
    }

    #[test]
    fn requests_through_the_service_carry_the_eager_body() {
        // The wrapped service sees a body that ends with its one frame.
        #[derive(Clone)]
        struct Capture(std::sync::Arc<std::sync::Mutex<Vec<bool>>>);
        impl Service<http::Request<tonic::body::Body>> for Capture {
            type Response = ();
            type Error = std::convert::Infallible;
            type Future = std::future::Ready<Result<(), Self::Error>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
                let mut body = request.into_body();
                let mut ends = Vec::new();
                let mut cx = Context::from_waker(Waker::noop());
                while let Poll::Ready(Some(Ok(_))) = Pin::new(&mut body).poll_frame(&mut cx) {
                    ends.push(body.is_end_stream());
                }
                self.0.lock().unwrap().extend(ends);
                std::future::ready(Ok(()))
            }
        }
        let seen = Capture(Default::default());
        let mut service = EagerEnd::new(seen.clone());
        let body = tonic::body::Body::new(LateEnd::new([Some(Ok("a")), Some(Ok("b"))]));
        // The capture reads the body in `call`; its future has nothing left to do.
        drop(service.call(http::Request::new(body)));
        assert_eq!(*seen.0.lock().unwrap(), vec![false, true]);
    }
}
