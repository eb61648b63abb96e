//! Triad's wire contracts: prost messages and tonic clients and servers
//! generated from `proto/triad/v1`, plus the encoded file descriptor set that
//! the services publish through gRPC server reflection; [`convert`] maps
//! between these wire types and `triad-features`' domain types.
#![forbid(unsafe_code)]

pub mod convert;

/// The `triad.v1` package.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("triad.v1");
}

/// Encoded `FileDescriptorSet` of every `triad.v1` file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/triad_descriptor.bin"));
