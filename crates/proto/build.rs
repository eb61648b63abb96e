//! Compiles `proto/triad/v1/*.proto` and the Open Inference Protocol's
//! `proto/inference/grpc_predict_v2.proto` with `protox` (pure Rust, no
//! `protoc`) and generates prost messages and tonic services from the
//! descriptors. Each package's descriptors are also written on their own, for
//! server reflection: only the scorer serves (and so publishes) `inference`.

use std::path::PathBuf;

use prost::Message;

/// The Open Inference Protocol file, relative to the proto root.
const INFERENCE_PROTO: &str = "inference/grpc_predict_v2.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("triad/v1"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path);
        }
    }
    files.sort();
    println!("cargo:rerun-if-changed={}", root.join("triad/v1").display());
    let inference = root.join(INFERENCE_PROTO);
    println!("cargo:rerun-if-changed={}", inference.display());
    files.push(inference);

    let fds = protox::compile(&files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let (inference_files, triad_files): (Vec<_>, Vec<_>) = fds
        .file
        .iter()
        .cloned()
        .partition(|file| file.package() == "inference");
    let write = |name: &str, file| {
        let mut set = fds.clone();
        set.file = file;
        std::fs::write(out_dir.join(name), set.encode_to_vec())
    };
    write("triad_descriptor.bin", triad_files)?;
    write("inference_descriptor.bin", inference_files)?;
    tonic_prost_build::configure()
        // Prost's codec plus a bound on what a bulk message costs decoded.
        .codec_path("crate::codec::BoundedCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
