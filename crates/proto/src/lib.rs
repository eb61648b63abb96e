//! Triad's wire contracts: prost messages and tonic clients and servers
//! generated from `proto/triad/v1` and from the Open Inference Protocol's
//! `proto/inference`, plus the encoded file descriptor sets that the services
//! publish through gRPC server reflection; [`convert`] maps between these
//! wire types and `triad-features`' domain types; [`shared::Shared`] sends
//! a message from behind an `Arc`; [`codec::BoundedCodec`], the codec of
//! every generated client and server, refuses a bulk message that would
//! cost too much once decoded.

pub mod codec;
pub mod convert;
pub mod shared;
pub mod time;

/// The `triad.v1` package.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("triad.v1");
}

/// The `inference` package: the Open Inference Protocol (KServe V2),
/// `inference.GRPCInferenceService`, as the scorer serves it.
pub mod inference {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("inference");
}

/// Encoded `FileDescriptorSet` of every `triad.v1` file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/triad_descriptor.bin"));

/// Encoded `FileDescriptorSet` of the `inference` package, for reflection
/// by the servers that serve `inference.GRPCInferenceService`.
pub const INFERENCE_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/inference_descriptor.bin"));
