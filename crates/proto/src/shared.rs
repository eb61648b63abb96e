//! [`Shared`]: a message sent from behind an [`Arc`], so sending one
//! request again (a retry) or keeping it while it is sent (the scorer keeps
//! a request's inputs for its outcomes) costs no copy of it; [`Encoded`]:
//! bytes sent as a message, byte for byte (what a hostile caller sends,
//! for tests and `triad soak`).

use std::sync::Arc;

use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};

/// `M` behind an [`Arc`], encoded exactly as `M` is: the same bytes on the
/// wire, so a server decodes it as `M`. Cloning it clones the [`Arc`].
#[derive(Debug, Default)]
pub struct Shared<M>(pub Arc<M>);

impl<M> Clone for Shared<M> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<M: Message + Clone> Message for Shared<M> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.0.encode_raw(buf);
    }

    /// Decoding into a shared message copies it first if it is shared
    /// (clients only encode it).
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        Arc::make_mut(&mut self.0).merge_field(tag, wire_type, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.encoded_len()
    }

    fn clear(&mut self) {
        Arc::make_mut(&mut self.0).clear();
    }
}

/// Bytes already in protobuf's wire format, sent as they are: any
/// message, well-formed or not, without building it first.
#[derive(Debug, Default, Clone)]
pub struct Encoded(pub Vec<u8>);

impl Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    /// Decoding skips every field: an `Encoded` is only ever sent.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1;

    #[test]
    fn a_shared_message_encodes_and_decodes_as_the_message_itself() {
        let request = v1::FeaturizeRequest {
            budgets: vec![v1::Budget {
                budget_id: Some("b/1".into()),
                travel_vendor_receipts: Some("receipt".into()),
                ..v1::Budget::default()
            }],
            ..v1::FeaturizeRequest::default()
        };
        let shared = Shared(Arc::new(request.clone()));
        assert_eq!(shared.encoded_len(), request.encoded_len());
        assert_eq!(shared.encode_to_vec(), request.encode_to_vec());
        let decoded = Shared::<v1::FeaturizeRequest>::decode(&*request.encode_to_vec()).unwrap();
        assert_eq!(*decoded.0, request);
    }
}
