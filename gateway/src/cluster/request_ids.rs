//! The request ids a call to a node serves, as the gRPC metadata `x-request-id` carries them
//! (`proto::REQUEST_ID_METADATA`): the node logs them on the call's span.

use tonic::metadata::{AsciiMetadataValue, MetadataValue};

/// Most bytes of ids one call carries. A `Submit` of a thousand batched orders would otherwise
/// send a header of tens of kilobytes; past this the batch's later ids are left off.
pub const MAX_REQUEST_IDS_BYTES: usize = 4_096;

/// Ids joined by `,`, or none. Cheap to clone: a retry to another node sends the same ids.
#[derive(Clone, Default)]
pub struct RequestIds(Option<AsciiMetadataValue>);

impl RequestIds {
    /// The id of the HTTP request this task handles, if any.
    pub fn of_this_request() -> Self {
        Self::joined(crate::request_id::current().as_deref())
    }

    /// `ids` joined by `,`, as many as fit in [`MAX_REQUEST_IDS_BYTES`].
    pub fn joined<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut text = String::new();
        for id in ids {
            let sep = usize::from(!text.is_empty());
            if text.len() + sep + id.len() > MAX_REQUEST_IDS_BYTES {
                break;
            }
            if sep == 1 {
                text.push(',');
            }
            text.push_str(id);
        }
        // Ids follow the API's identifier rule, so they are valid metadata; anything else
        // would only cost the log its ids, never the call.
        Self(
            (!text.is_empty())
                .then(|| MetadataValue::try_from(text).ok())
                .flatten(),
        )
    }

    pub fn attach<T>(&self, request: &mut tonic::Request<T>) {
        if let Some(ids) = &self.0 {
            request
                .metadata_mut()
                .insert(proto::REQUEST_ID_METADATA, ids.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(ids: RequestIds) -> Option<String> {
        let mut request = tonic::Request::new(());
        ids.attach(&mut request);
        request
            .metadata()
            .get(proto::REQUEST_ID_METADATA)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn ids_are_joined_and_capped() {
        assert_eq!(sent(RequestIds::joined(["a", "b-1"])), Some("a,b-1".into()));
        assert_eq!(sent(RequestIds::joined([])), None);
        assert_eq!(sent(RequestIds::default()), None);
        let id = "x".repeat(100);
        let many = vec![id.as_str(); 1_000];
        let header = sent(RequestIds::joined(many)).unwrap();
        assert!(header.len() <= MAX_REQUEST_IDS_BYTES);
        assert_eq!(header.split(',').count(), (MAX_REQUEST_IDS_BYTES + 1) / 101);
        assert!(header.split(',').all(|part| part == id));
    }

    #[test]
    fn outside_a_request_nothing_is_sent() {
        assert_eq!(sent(RequestIds::of_this_request()), None);
    }
}
